#if canImport(Glibc)
import Glibc
#endif

/// Shared memory that could not be allocated, mapped, passed or trusted.
public struct SharedMemoryError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let description: String

    package init(_ description: String) {
        self.description = description
    }

    package init(_ step: String, errno code: Int32) {
        self.description = "\(step): \(String(cString: strerror(code)))"
    }
}
