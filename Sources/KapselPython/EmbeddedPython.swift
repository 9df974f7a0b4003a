import Foundation
import Kapsel
import Synchronization

/// The Python interpreter embedded in this process: at most one, started on first use
/// with a given runtime (on `InterpreterThread`). A request runs on the thread that makes
/// it — a session's calls run on `InterpreterThread` — holding the GIL, values crossing
/// through the C API (`PythonConverter`); an interrupt (a time-out or a cancelled call)
/// comes from another thread and raises `TimeoutError` in the Python code of the call it
/// cancels.
final class EmbeddedPython: Sendable {
    private static let started = Mutex<EmbeddedPython?>(nil)

    /// The interpreter of this process, if one was started.
    static var current: EmbeddedPython? { started.withLock { $0 } }

    let runtime: PythonRuntime
    /// The folders first on `sys.path` (an environment's packages), fixed at start.
    let packagePaths: [String]
    private let library: PythonLibrary
    private let converter: PythonConverter
    /// The helper's `_kapsel_call`.
    private let entry: UnsafeSendable<OpaquePointer>
    /// The names of the helper's requests, as Python strings made once.
    private let opNames = Mutex<[String: UnsafeSendable<OpaquePointer>]>([:])
    /// The thread (Python's thread id) each request runs on while it runs, by request.
    private let running = Mutex<[Int: UInt]>([:])
    /// Requests an interrupt was raised in.
    private let interruptedCalls = Mutex<Set<Int>>([])
    private let thread = InterpreterThread.shared
    /// Numbers requests, for interrupts.
    private let nextCall = Atomic<Int>(1)

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
        // request takes it with PyGILState_Ensure.
        let helper = try thread.runAndWait { () throws -> UnsafeSendable<[OpaquePointer]> in
            library.initialize(0)
            defer { _ = library.saveThread() }
            guard library.runString(PythonHelper.source) == 0, let main = library.addModule("__main__") else {
                library.printError()
                throw PythonError(type: "RuntimeNotLoadable", message: "Python \(runtime.version) started, but Kapsel's helper did not load (see the daemon's output)")
            }
            let names = ["_kapsel_call", "_Ref", "_configure"]
            let objects = names.compactMap { library.getAttribute(main, $0) }
            guard objects.count == names.count else {
                library.printError()
                throw PythonError(type: "RuntimeNotLoadable", message: "Kapsel's helper in Python \(runtime.version) lacks its entry points")
            }
            return UnsafeSendable(objects)
        }.value
        entry = UnsafeSendable(helper[0])
        converter = PythonConverter(library: library, referenceType: helper[1])
        let configure = UnsafeSendable(helper[2])
        func address(_ function: UnsafeRawPointer) -> PythonValue { .int(Int(bitPattern: function)) }
        let bridge: [PythonValue] = [
            address(unsafeBitCast(SharedMemoryBridge.allocate, to: UnsafeRawPointer.self)),
            address(unsafeBitCast(SharedMemoryBridge.addressOf, to: UnsafeRawPointer.self)),
            address(unsafeBitCast(SharedMemoryBridge.release, to: UnsafeRawPointer.self)),
            address(unsafeBitCast(ArrowBridge.lendStructsForPython, to: UnsafeRawPointer.self)),
            address(unsafeBitCast(ArrowBridge.arrayAddress, to: UnsafeRawPointer.self)),
            address(unsafeBitCast(ArrowBridge.schemaAddress, to: UnsafeRawPointer.self)),
            address(unsafeBitCast(ArrowBridge.freeStructs, to: UnsafeRawPointer.self)),
        ]
        let converter = self.converter
        try thread.runAndWait {
            try PythonThreadStates.withGIL(library, keeping: false) {
                let arguments = try converter.tuple(bridge)
                defer { library.decrementReference(arguments) }
                guard let result = library.call(configure.value, arguments, nil) else {
                    library.printError()
                    throw PythonError(type: "RuntimeNotLoadable", message: "Kapsel's helper could not be configured (see the daemon's output)")
                }
                library.decrementReference(result)
            }
        }
    }

    /// Runs request `op` of the helper with `fields` and returns its value (objects
    /// become handles, actors of `system`); throws the Python exception it raised. It runs
    /// where its caller runs (a session's method, on `InterpreterThread`), with no hop. If
    /// the calling task is cancelled meanwhile, the running Python code is interrupted.
    nonisolated(nonsending) func call(_ op: String, _ fields: [PythonValue], system: KapselActorSystem) async throws -> PythonValue {
        let objectIDs = await Self.objectIDs(in: fields)
        let call = nextCall.wrappingAdd(1, ordering: .relaxed).oldValue
        return try await withTaskCancellationHandler {
            try request(op, fields, call: call, objectIDs: objectIDs, system: system)
        } onCancel: {
            Thread.detachNewThread { self.interrupt(call) }
        }
    }

    /// Runs request `op` with `fields` (plain data only) without waiting for the answer:
    /// what a deinit does.
    func post(_ op: String, _ fields: [PythonValue]) {
        let call = nextCall.wrappingAdd(1, ordering: .relaxed).oldValue
        thread.submit { [self] in _ = try? request(op, fields, call: call, objectIDs: [:], system: nil) }
    }

    /// Calls the helper with the GIL held, converting both ways; while it runs, `call`
    /// names the thread running it, for an interrupt.
    private func request(_ op: String, _ fields: [PythonValue], call: Int, objectIDs: [ObjectIdentifier: Int], system: KapselActorSystem?) throws -> PythonValue {
        try PythonThreadStates.withGIL(library) {
            let arguments = try requestArguments(op, fields, objectIDs: objectIDs)
            defer { library.decrementReference(arguments) }
            // Python's id of a thread is its pthread_t.
            running.withLock { $0[call] = UInt(pthread_self()) }
            let answer = library.call(entry.value, arguments, nil)
            finish(call)
            guard let answer else {
                library.printError()
                throw PythonError(type: "KapselError", message: "Kapsel's Python helper failed (see the daemon's output)")
            }
            defer { library.decrementReference(answer) }
            guard let system else { return .none }
            guard library.tupleSize(answer) == 2, let status = library.tupleItem(answer, 0), let value = library.tupleItem(answer, 1) else {
                throw PythonError(type: "KapselError", message: "a malformed answer from Kapsel's Python helper")
            }
            if status == library.true { return try converter.value(of: value, system: system) }
            let details = try converter.value(of: value, system: system).list?.compactMap(\.string) ?? []
            guard details.count == 3 else { throw PythonError(type: "KapselError", message: "a malformed error from Kapsel's Python helper") }
            throw PythonError(type: details[0], message: details[1], traceback: details[2])
        }
    }

    /// `(op, (fields...))` for `_kapsel_call`, the op's name made once and kept.
    private func requestArguments(_ op: String, _ fields: [PythonValue], objectIDs: [ObjectIdentifier: Int]) throws -> OpaquePointer {
        guard let name = opNames.withLock({ names in names[op] ?? op.withCString(library.internString).map { names[op] = UnsafeSendable($0); return UnsafeSendable($0) } }),
              let arguments = library.newTuple(2) else {
            throw PythonError(type: "KapselError", message: "cannot pass a request to Python")
        }
        library.incrementReference(name.value)
        _ = library.setTupleItem(arguments, 0, name.value)
        do {
            _ = library.setTupleItem(arguments, 1, try converter.tuple(fields, objectIDs: objectIDs))
        } catch {
            library.decrementReference(arguments)
            throw error
        }
        return arguments
    }

    /// Call `call` has left Python (with the GIL held): an interrupt can no longer reach
    /// it, and one that came too late to be raised in it is dropped before the thread runs
    /// Python again.
    private func finish(_ call: Int) {
        guard let (thread, interrupted) = running.withLock({ running -> (UInt, Bool)? in
            guard let thread = running.removeValue(forKey: call) else { return nil }
            return (thread, interruptedCalls.withLock { $0.remove(call) != nil })
        }), interrupted else { return }
        _ = library.setAsyncException(thread, nil)
    }

    /// Raises `TimeoutError` in the Python code of request `call`, if it still runs (from
    /// another thread than the one busy running it). With the GIL held, the call's thread
    /// is either inside it or has not finished it.
    private func interrupt(_ call: Int) {
        PythonThreadStates.withGIL(library, keeping: false) {
            guard let thread = running.withLock({ $0[call] }) else { return }
            interruptedCalls.withLock { _ = $0.insert(call) }
            _ = library.setAsyncException(thread, library.timeoutError)
        }
    }

    /// The ids of the handles among `values`, read where their actors are.
    private nonisolated(nonsending) static func objectIDs(in values: [PythonValue]) async -> [ObjectIdentifier: Int] {
        var ids: [ObjectIdentifier: Int] = [:]
        var pending = values[...]
        while let value = pending.popFirst() {
            switch value {
            case .list(let items): pending.append(contentsOf: items)
            case .dict(let entries): pending.append(contentsOf: entries.values)
            case .object(let handle): ids[ObjectIdentifier(handle)] = await handle.whenLocal { $0.objectID } ?? -1
            default: break
            }
        }
        return ids
    }
}

/// A value that is only ever used under a lock Swift cannot see.
///
/// `@unchecked Sendable`: it wraps one immutable `let`; its uses hold Python objects (the
/// helper's functions) that are only touched with the GIL held, which serializes every
/// thread's use of them.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
