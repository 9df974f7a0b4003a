import Foundation
import Kapsel
import Synchronization

/// The Python interpreter embedded in this process: at most one, started on first use
/// with a given runtime. Every request runs on its one thread (`InterpreterThread`), holding the GIL; an
/// interrupt (a time-out or a cancelled call) comes from another thread and raises
/// `TimeoutError` in the running Python code at its next bytecode.
final class EmbeddedPython: Sendable {
    private static let started = Mutex<EmbeddedPython?>(nil)

    /// The interpreter of this process, if one was started.
    static var current: EmbeddedPython? { started.withLock { $0 } }

    let runtime: PythonRuntime
    /// The folders first on `sys.path` (an environment's packages), fixed at start.
    let packagePaths: [String]
    private let library: PythonLibrary
    private let dispatchFunction: UnsafeSendable<OpaquePointer>
    private let interpreter = InterpreterThread(name: "kapsel.python")

    /// The interpreter of this process, started with `runtime` and `packagePaths` (put
    /// first on `sys.path`) if it is not yet. Throws if it runs another runtime already.
    static func start(_ runtime: PythonRuntime, packagePaths: [String]) throws -> EmbeddedPython {
        try started.withLock { current in
            if let current {
                guard current.runtime == runtime else {
                    throw PythonError(type: "RuntimeMismatch", message: "this daemon already runs Python \(current.runtime.version) at \(current.runtime.executable); start the session in another daemon")
                }
                guard current.packagePaths == packagePaths else {
                    throw PythonError(type: "EnvironmentMismatch", message: "this daemon's Python already runs with packages from \(current.packagePaths); start the session in another daemon (or restart this one)")
                }
                return current
            }
            let python = try EmbeddedPython(runtime, packagePaths: packagePaths)
            current = python
            return python
        }
    }

    private init(_ runtime: PythonRuntime, packagePaths: [String]) throws {
        self.runtime = runtime
        self.packagePaths = packagePaths
        let library = try PythonLibrary(path: runtime.library)
        self.library = library
        setenv("PYTHONHOME", runtime.home, 1)
        setenv("PYTHONNOUSERSITE", "1", 1)
        setenv("PYTHONDONTWRITEBYTECODE", "1", 1)
        if packagePaths.isEmpty { unsetenv("PYTHONPATH") } else { setenv("PYTHONPATH", packagePaths.joined(separator: ":"), 1) }
        // Initialised on the interpreter's thread, which then gives the GIL up: every later
        // request takes it with PyGILState_Ensure there (an interrupt, from another thread).
        let function: OpaquePointer? = interpreter.sync { () -> UnsafeSendable<OpaquePointer>? in
            library.initialize(0)
            defer { _ = library.saveThread() }
            guard library.runString(PythonHelper.source) == 0,
                  let main = library.addModule("__main__"),
                  let function = library.getAttribute(main, "_kapsel_dispatch") else {
                library.printError()
                return nil
            }
            return UnsafeSendable(function)
        }?.value
        guard let function else {
            throw PythonError(type: "RuntimeNotLoadable", message: "Python \(runtime.version) started, but Kapsel's helper did not load (see the daemon's output)")
        }
        dispatchFunction = UnsafeSendable(function)
        func address(_ function: UnsafeRawPointer) -> PythonJSON { .int(Int(bitPattern: function)) }
        let configured = dispatch(PythonJSON.request([
            "op": .string("configure"),
            "allocate": address(unsafeBitCast(SharedMemoryBridge.allocate, to: UnsafeRawPointer.self)),
            "address": address(unsafeBitCast(SharedMemoryBridge.addressOf, to: UnsafeRawPointer.self)),
            "release": address(unsafeBitCast(SharedMemoryBridge.release, to: UnsafeRawPointer.self)),
            "structs": address(unsafeBitCast(ArrowBridge.lendStructsForPython, to: UnsafeRawPointer.self)),
            "array_at": address(unsafeBitCast(ArrowBridge.arrayAddress, to: UnsafeRawPointer.self)),
            "schema_at": address(unsafeBitCast(ArrowBridge.schemaAddress, to: UnsafeRawPointer.self)),
            "free_structs": address(unsafeBitCast(ArrowBridge.freeStructs, to: UnsafeRawPointer.self)),
        ]))
        _ = try PythonJSON.result(of: configured)
    }

    /// Runs `request` (JSON) and returns the response (JSON). If the calling task is
    /// cancelled meanwhile, the running Python code is interrupted.
    func request(_ request: String) async -> String {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                interpreter.async { continuation.resume(returning: self.dispatch(request)) }
            }
        } onCancel: {
            Thread.detachNewThread { _ = self.dispatch(#"{"op":"interrupt"}"#) }
        }
    }

    /// The value Python answers `fields` with (objects become handles, actors of
    /// `system`); throws the Python exception it reports.
    func value(of fields: [String: PythonJSON], system: KapselActorSystem) async throws -> PythonValue {
        try PythonValue(PythonJSON.result(of: await request(PythonJSON.request(fields))), system: system)
    }

    /// Sends `fields` without waiting for the answer: what a deinit does.
    func post(_ fields: [String: PythonJSON]) {
        let text = PythonJSON.request(fields)
        Task { _ = await request(text) }
    }

    /// Calls the helper with the GIL held.
    private func dispatch(_ request: String) -> String {
        let state = library.ensureGIL()
        defer { library.releaseGIL(state) }
        let argument = request.withCString { library.stringFromUTF8($0, strlen($0)) }
        guard let argument, let arguments = library.newTuple(1) else {
            library.printError()
            return #"{"error":{"type":"KapselError","message":"cannot pass a request to Python","traceback":""}}"#
        }
        _ = library.setTupleItem(arguments, 0, argument)
        defer { library.decrementReference(arguments) }
        guard let result = library.call(dispatchFunction.value, arguments, nil) else {
            library.printError()
            return #"{"error":{"type":"KapselError","message":"Kapsel's Python helper failed (see the daemon's output)","traceback":""}}"#
        }
        defer { library.decrementReference(result) }
        var length = 0
        guard let bytes = library.stringAsUTF8(result, &length) else {
            library.printError()
            return #"{"error":{"type":"KapselError","message":"Kapsel's Python helper answered with no text","traceback":""}}"#
        }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    }
}

/// A value that is only ever used under a lock Swift cannot see.
///
/// `@unchecked Sendable`: it wraps one immutable `let`; its one use holds a Python object
/// (the helper's dispatch function) that is only touched with the GIL held, which
/// serializes every thread's use of it.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
