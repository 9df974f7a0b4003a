/// A Python exception (or a failure to run Python), as Swift sees it: the exception's
/// type, its message and the traceback.
public struct PythonError: Error, Codable, Sendable, Hashable, CustomStringConvertible {
    /// The exception's type, e.g. `ZeroDivisionError` or `numpy.linalg.LinAlgError`.
    public let type: String
    /// `str(exception)`.
    public let message: String
    /// The formatted traceback, innermost call last.
    public let traceback: String

    /// An error.
    public init(type: String, message: String, traceback: String = "") {
        self.type = type
        self.message = message
        self.traceback = traceback
    }

    /// `Type: message`, then the traceback.
    public var description: String {
        traceback.isEmpty ? "\(type): \(message)" : "\(type): \(message)\n\(traceback)"
    }
}
