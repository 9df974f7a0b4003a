/// A violation of the Kapsel wire protocol: a malformed or oversized frame, an
/// unexpected message, or a failed handshake. The connection it happened on is
/// closed; nothing else is affected.
public struct WireError: Error, CustomStringConvertible, Sendable, Hashable {
    /// What kind of violation.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: Hashable, Sendable { case oversizedFrame, malformedFrame, unexpectedMessage, authenticationFailed, versionMismatch, refused }
        fileprivate let value: Value

        /// A length prefix above the connection's limit.
        public static let oversizedFrame = Code(value: .oversizedFrame)
        /// A frame whose contents do not parse.
        public static let malformedFrame = Code(value: .malformedFrame)
        /// A well-formed message that is not allowed in the connection's state.
        public static let unexpectedMessage = Code(value: .unexpectedMessage)
        /// A peer that could not prove it knows the shared secret.
        public static let authenticationFailed = Code(value: .authenticationFailed)
        /// A peer speaking another protocol version.
        public static let versionMismatch = Code(value: .versionMismatch)
        /// The peer refused the connection and said why.
        public static let refused = Code(value: .refused)

        public var description: String {
            switch value {
            case .oversizedFrame: "oversized frame"
            case .malformedFrame: "malformed frame"
            case .unexpectedMessage: "unexpected message"
            case .authenticationFailed: "authentication failed"
            case .versionMismatch: "protocol version mismatch"
            case .refused: "refused"
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
