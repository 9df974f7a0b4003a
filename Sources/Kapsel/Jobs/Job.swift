import KapselWire

/// A unit of work that runs in a daemon: a `Codable` value whose `run()` produces a
/// `Codable` output.
///
/// ```swift
/// struct Simulate: Job {
///     var mean: Double, sd: Double, n: Int
///     func run() async throws -> Double { ... }
/// }
///
/// try await withDaemons(2) { daemons in
///     let handle = daemons.submit(Simulate(mean: 2, sd: 5, n: 1_000_000))
///     let mean = try await handle.value
/// }
/// ```
///
/// The job value is encoded on the host and decoded in the daemon, so the daemon
/// must know the type: list it in `Kapsel.bootstrap(jobs:)` at the top of the daemon
/// executable's `main` (the host's own executable, by default).
public protocol Job: Codable, Sendable {
    /// What `run()` returns; it travels back to the host.
    associatedtype Output: Codable & Sendable

    /// The stable name the daemon finds the type by. The default, the type's fully
    /// qualified name (`MyModule.Simulate`), is stable for types declared at file
    /// scope; a type declared inside a function needs an explicit name.
    static var jobTypeName: String { get }

    /// Does the work, in the daemon. A thrown error reaches the host as a
    /// `JobError` with code `.remote`, its type, message and (for `JobFailure`) its location.
    func run() async throws -> Output
}

extension Job {
    /// The type's fully qualified name, e.g. `MyModule.Simulate`.
    public static var jobTypeName: String { TypeNames.name(of: Self.self) { String(reflecting: Self.self) } }
}

/// Job type names, worked out once per type: `String(reflecting:)` walks the type's
/// metadata each time, and a job's name is asked for on every submission.
enum TypeNames {
    private static let names = PerTypeCache<String>()

    /// The name of `type`, from `make` the first time it is asked for.
    static func name(of type: Any.Type, _ make: () -> String) -> String {
        names.value(for: type, make)
    }
}

/// An error that knows where it was thrown; the daemon reports the location with it.
public protocol LocatedError: Error {
    /// `file:line` (and function) where the error was made.
    var sourceLocation: String { get }
}

/// A simple error for jobs to throw: a message, and the place it was thrown.
///
/// ```swift
/// guard n > 0 else { throw JobFailure("n must be positive, got \(n)") }
/// ```
public struct JobFailure: LocatedError, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let message: String
    /// `file:line in function`, captured where the failure was created.
    public let sourceLocation: String

    /// Creates a failure, recording where it was created.
    public init(_ message: String, fileID: StaticString = #fileID, line: UInt = #line, function: StaticString = #function) {
        self.message = message
        self.sourceLocation = "\(fileID):\(line) in \(function)"
    }

    public var description: String { message }
}
