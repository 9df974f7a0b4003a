/// Daemons that could not be started.
public struct DaemonsError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, including what the failing daemon printed.
    public let message: String

    package init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
