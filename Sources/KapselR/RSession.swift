import Distributed
import Foundation
import Kapsel
import KapselArrow

/// An embedded R session that lives in a daemon: whatever R does — segfault, `quit()`, an
/// endless loop — only that daemon suffers.
///
/// ```swift
/// let r = try await daemons.spawn(RSession.self, configuration: .init(runtime: try RRuntime()))
/// let mean = try await r.call("mean", [1.0, 2.0, 4.5]).double     // 2.5
/// let brms = r.module("brms")                                     // calls read like R's
/// let fit = try await brms.brm(RFormula("count ~ zAge + (1 | patient)"), data: epilepsy, family: .call("poisson"))
/// ```
///
/// Plain data converts both ways (`RValue`); other objects stay in the daemon behind
/// `RObject` handles, kept there while the host holds them. An R error arrives as an
/// `RError` (class, message, call, traceback) through the call's `JobError`
/// (`RError(error)` reads it back); warnings come with the result. A call that outlives
/// its time limit (`KapselActorSystem.$callTimeout`) is interrupted and the session goes
/// on. Sessions of one daemon share its R (one R per process, which cannot be restarted)
/// but each has an environment of its own for `eval`. List `RSession.self` in
/// `Kapsel.bootstrap(actors:)`.
public distributed actor RSession: KapselActor {
    public typealias ActorSystem = KapselActorSystem

    /// R's thread: the methods call into R where they run.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        RExecutor.shared.asUnownedSerialExecutor()
    }

    /// R's thread: calls run there, from decoding to answering (`KapselActor.callExecutor`).
    public static var callExecutor: (any TaskExecutor)? { RThread.shared }

    /// Which R, with which libraries.
    public struct Configuration: Codable, Sendable, Hashable {
        /// The R installation.
        public var runtime: RRuntime
        /// Folders put first on `.libPaths()` (an environment's library).
        public var libraryPaths: [String]

        /// A configuration.
        public init(runtime: RRuntime, libraryPaths: [String] = []) {
            self.runtime = runtime
            self.libraryPaths = libraryPaths
        }
    }

    private let r: EmbeddedR
    private let environment = UUID().uuidString
    /// Functions of packages known to exist, checked once each.
    private var knownFunctions: Set<String> = []

    /// Starts (or joins) the daemon's R.
    public init(actorSystem: KapselActorSystem, configuration: Configuration) throws {
        self.actorSystem = actorSystem
        r = try EmbeddedR.start(configuration.runtime, libraryPaths: configuration.libraryPaths)
    }

    deinit {
        r.dropEnvironment(environment)
    }

    /// The R this session runs.
    public distributed var runtime: RRuntime { r.runtime }

    /// Evaluates R code in the session's environment (what it assigns stays there) and
    /// returns the value of its last expression.
    public distributed func eval(_ code: String) async throws -> RResult {
        try await r.run(code, in: environment, bindings: nil, system: actorSystem)
    }

    /// Calls `function` — a name the session sees (`mean`, one it defined) or
    /// `package::name`, whose package is loaded on first use — with `arguments`.
    public distributed func call(_ function: String, arguments: [RArgument]) async throws -> RResult {
        guard RCode.isFunctionName(function) else {
            throw RError("NotAFunctionName", "'\(function)' is not the name of a function (a name, or package::name)")
        }
        try await checkExists(function)
        let (code, bindings) = RConverter.call(function, arguments)
        return try await r.run(code, in: environment, bindings: bindings, system: actorSystem)
    }

    /// Checks once that a package's function exists, loading the package.
    private func checkExists(_ function: String) async throws {
        guard function.contains("::"), !knownFunctions.contains(function) else { return }
        let parts = function.components(separatedBy: ":").filter { !$0.isEmpty }
        let check = "exists(\(RCode.quoted(parts[1])), envir = asNamespace(\(RCode.quoted(parts[0]))), inherits = FALSE)"
        guard try await r.run(check, in: environment, bindings: nil, system: actorSystem).value.bool == true else {
            throw RError("NoSuchFunction", "package \(parts[0]) has no function \(parts[1])")
        }
        knownFunctions.insert(function)
    }

    /// Objects R keeps for handles the host holds (all sessions of this daemon).
    public distributed func objectCount() -> Int {
        r.objectCount
    }

    /// Vectors over shared memory R still holds (tensors and table columns passed in).
    public distributed func sharedVectorCount() -> Int {
        SharedVectors.live.load(ordering: .relaxed)
    }

    /// Runs R's garbage collector (what R no longer references goes, handles aside).
    public distributed func collectGarbage() async throws {
        try await r.collectGarbage()
    }
}

extension RSession {
    /// Calls `function` with positional `arguments` and named ones:
    /// `try await r.call("round", 2.675, named: ["digits": 2])`.
    public nonisolated func call(_ function: String, _ arguments: any RValueConvertible..., named: KeyValuePairs<String, any RValueConvertible> = [:]) async throws -> RResult {
        try await call(function, arguments: arguments.map { RArgument(nil, $0.rValue) } + named.map { RArgument($0.key, $0.value.rValue) })
    }

    /// A proxy of the R package `package`: `r.module("brms").brm(...)` calls `brms::brm`.
    public nonisolated func module(_ package: String) -> RModule {
        RModule(session: self, package: package)
    }
}

/// How an R call ended: its value, and the warnings R signalled on the way.
public struct RResult: Codable, Sendable {
    /// The value.
    public var value: RValue
    /// The warnings' messages, in order.
    public var warnings: [String]

    /// A result.
    public init(value: RValue, warnings: [String] = []) {
        self.value = value
        self.warnings = warnings
    }

    /// The value's one number (`RValue.double`).
    public var double: Double? { value.double }
    /// The value's one integer (`RValue.int`).
    public var int: Int? { value.int }
    /// The value's one string (`RValue.string`).
    public var string: String? { value.string }
    /// The value's one truth value (`RValue.bool`).
    public var bool: Bool? { value.bool }
    /// The value's table (`RValue.table`).
    public var table: SharedTable? { value.table }
    /// The value's handle (`RValue.object`).
    public var object: RObject? { value.object }

    /// The value as a tensor (`RValue.tensor()`).
    public func tensor() throws -> SharedTensor<Double> {
        try value.tensor()
    }

    /// The value as text, or what R prints for an object (`RValue.string()`).
    public func string() async throws -> String {
        try await value.string()
    }
}
