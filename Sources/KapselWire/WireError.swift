/// A violation of the Kapsel wire protocol found while reading frames: a malformed or
/// oversized frame. The connection it happened on is closed; nothing else is affected.
/// (A message out of turn or a failed handshake is a refusal or an exit with its
/// reason, decided by the connection's state machine.)
public struct WireError: Error, CustomStringConvertible, Sendable, Hashable {
    /// What kind of violation.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable { case oversizedFrame, malformedFrame }
        fileprivate let value: Value

        /// A length prefix above the connection's limit.
        public static let oversizedFrame = Code(value: .oversizedFrame)
        /// A frame whose contents do not parse.
        public static let malformedFrame = Code(value: .malformedFrame)

        public var description: String {
            switch value {
            case .oversizedFrame: "oversized frame"
            case .malformedFrame: "malformed frame"
            }
        }
    }

    /// The kind of violation.
    public let code: Code
    /// What happened, for people.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
