import Distributed
import Foundation
import Kapsel

/// An embedded Python interpreter session that lives in a daemon: whatever the Python
/// code does — segfault, `os._exit`, an endless loop — only that daemon suffers.
///
/// ```swift
/// let python = try await daemons.spawn(PythonSession.self, configuration: .init(runtime: runtime))
/// try await python.exec("import math")
/// let root = try await python.eval("math.sqrt(2)")            // .double(1.414…)
/// let points = try await python.call("numpy.linspace", 0, 1, 5)   // an object handle
/// ```
///
/// Plain data converts both ways (`PythonValue`); other objects stay in the daemon behind
/// `PythonObject` handles, freed there when the host drops them. A Python exception
/// arrives as a `PythonError` (type, message, traceback), through the call's `JobError`
/// (`PythonError(error)` reads it back). A call that outlives its time limit
/// (`KapselActorSystem.$callTimeout`) raises `TimeoutError` inside Python. Sessions of one
/// daemon share its interpreter but not their variables; the daemon's executable lists
/// `PythonSession.self` in `Kapsel.bootstrap(actors:)`.
public distributed actor PythonSession: KapselActor {
    public typealias ActorSystem = KapselActorSystem

    /// Which interpreter, with which packages.
    public struct Configuration: Codable, Sendable {
        /// The interpreter.
        public var runtime: PythonRuntime
        /// Folders put first on `sys.path` (an environment's packages).
        public var packagePaths: [String]

        /// A configuration.
        public init(runtime: PythonRuntime, packagePaths: [String] = []) {
            self.runtime = runtime
            self.packagePaths = packagePaths
        }
    }

    /// Python's thread: calls run there, from decoding to answering (`KapselActor.callExecutor`).
    public static var callExecutor: (any TaskExecutor)? { InterpreterThread.shared }

    private let python: EmbeddedPython
    private let name = UUID().uuidString

    /// Starts (or joins) the daemon's interpreter.
    public init(actorSystem: KapselActorSystem, configuration: Configuration) throws {
        self.actorSystem = actorSystem
        python = try EmbeddedPython.start(configuration.runtime, packagePaths: configuration.packagePaths)
    }

    deinit {
        python.post("close", [.string(name)])
    }

    /// The interpreter this session runs.
    public distributed var runtime: PythonRuntime { python.runtime }

    /// Runs statements in the session's namespace.
    public distributed func exec(_ code: String) async throws {
        _ = try await run("exec", [.string(code)])
    }

    /// Evaluates an expression in the session's namespace.
    public distributed func eval(_ expression: String) async throws -> PythonValue {
        try await run("eval", [.string(expression)])
    }

    /// Imports `module` into the session's namespace (as `alias` if given).
    public distributed func importModule(_ module: String, as alias: String? = nil) async throws {
        _ = try await run("import", [.string(module), alias.map(PythonValue.string) ?? .none])
    }

    /// Calls `function` — a name in the session, a builtin, or a dotted path into a
    /// module (`numpy.linalg.norm`), imported if need be.
    public distributed func call(_ function: String, arguments: [PythonValue], keywords: [String: PythonValue] = [:]) async throws -> PythonValue {
        try await run("call", [.string(function), .list(arguments), .dict(keywords)])
    }

    /// Python objects the daemon keeps for handles the host holds (all sessions of it).
    public distributed func objectCount() async throws -> Int {
        try await python.call("count", [], system: actorSystem).int ?? 0
    }

    /// Tables passed to Python whose memory pyarrow has not released yet.
    public distributed func exportedTableCount() -> Int {
        ArrowBridge.outstanding
    }

    /// Shared buffers Python views now (arrays passed in that it still holds).
    public distributed func viewedBufferCount() -> Int {
        SharedMemoryBridge.count
    }

    /// Runs request `op` of the helper in this session's namespace.
    private func run(_ op: String, _ fields: [PythonValue]) async throws -> PythonValue {
        try await python.call(op, [.string(name)] + fields, system: actorSystem)
    }
}

extension PythonSession {
    /// Calls `function` with positional `arguments`: `try await python.call("round", 2.675, 2)`.
    public nonisolated func call(_ function: String, _ arguments: PythonValue..., keywords: [String: PythonValue] = [:]) async throws -> PythonValue {
        try await call(function, arguments: arguments, keywords: keywords)
    }
}

/// A Python object that stays in its daemon; the host holds this handle. When the host
/// drops its last handle, the daemon lets the object go.
public distributed actor PythonObject: KapselActor {
    public typealias ActorSystem = KapselActorSystem

    /// Which object of the daemon's interpreter.
    public struct Configuration: Codable, Sendable {
        let id: Int
        let type: String
    }

    /// Python's thread: calls run there, from decoding to answering (`KapselActor.callExecutor`).
    public static var callExecutor: (any TaskExecutor)? { InterpreterThread.shared }

    let objectID: Int
    private let typeName: String

    /// A handle to object `configuration.id` of this daemon's interpreter.
    public init(actorSystem: KapselActorSystem, configuration: Configuration) {
        self.actorSystem = actorSystem
        self.objectID = configuration.id
        self.typeName = configuration.type
    }

    deinit {
        EmbeddedPython.current?.post("release", [.int(objectID)])
    }

    /// The object's type, e.g. `numpy.ndarray`.
    public distributed var type: String { typeName }

    /// Calls the object's method `name`.
    public distributed func call(_ name: String, arguments: [PythonValue] = [], keywords: [String: PythonValue] = [:]) async throws -> PythonValue {
        try await run("method", [.string(name), .list(arguments), .dict(keywords)])
    }

    /// The object's attribute `name`.
    public distributed func attribute(_ name: String) async throws -> PythonValue {
        try await run("attribute", [.string(name)])
    }

    /// `repr(object)`.
    public distributed func repr() async throws -> String {
        try await run("repr", []).string ?? ""
    }

    /// Runs request `op` of the helper on this object.
    private func run(_ op: String, _ fields: [PythonValue]) async throws -> PythonValue {
        guard let python = EmbeddedPython.current else { throw PythonError(type: "KapselError", message: "no Python runs in this daemon") }
        return try await python.call(op, [.int(objectID)] + fields, system: actorSystem)
    }
}

extension PythonError {
    /// The Python exception a failed call to a session reports, read back from its
    /// `JobError`; nil if the call failed otherwise (a crash, a time-out).
    public init?(_ error: JobError) {
        guard error.code == .remote, error.remoteErrorType?.hasSuffix("PythonError") == true else { return nil }
        let text = error.message
        let marker = "\nTraceback (most recent call last):"
        let head = text.firstRange(of: marker).map { String(text[..<$0.lowerBound]) } ?? text
        let traceback = text.firstRange(of: marker).map { String(text[text.index(after: $0.lowerBound)...]) } ?? ""
        guard let colon = head.firstRange(of: ": ") else {
            self.init(type: head, message: "", traceback: traceback)
            return
        }
        self.init(type: String(head[..<colon.lowerBound]), message: String(head[colon.upperBound...]), traceback: traceback)
    }
}
