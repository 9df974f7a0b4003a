import Foundation
import Kapsel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The R embedded in this process: at most one, started on first use with a given runtime
/// and library paths, never restarted (R cannot be). Everything that touches R runs on its
/// one thread (`RThread`).
///
/// R starts with its own signal handlers off (a segfault in R is the daemon's crash, which
/// the host reports), not interactive, and with its C stack check set to the thread it
/// runs on. Code runs through a helper (`RHelper`) that catches errors, warnings and
/// interrupts; an interrupt (a time-out, a cancelled call) is R's pending-interrupt flag,
/// set from another thread, and R goes on afterwards.
final class EmbeddedR: Sendable {
    private static let started = Mutex<EmbeddedR?>(nil)

    /// The R of this process, if one was started.
    static var current: EmbeddedR? { started.withLock { $0 } }

    let runtime: RRuntime
    /// Folders first on `.libPaths()` (an environment's library), fixed at start.
    let libraryPaths: [String]
    let library: RLibrary
    let thread = RThread.shared
    /// The helper's environment and other objects R must keep, by their address.
    private let helper: UInt
    private let objects = Mutex<[KapselActorID: UInt]>([:])
    private let environments = Mutex<[String: UInt]>([:])
    /// The call R runs now, for interrupts aimed at it.
    private let running = Mutex<UInt64?>(nil)
    private let nextCall = Atomic<UInt64>(1)

    /// The R of this process, started with `runtime` and `libraryPaths` (put first on
    /// `.libPaths()`) if it is not yet. Throws if it runs another runtime or other paths.
    static func start(_ runtime: RRuntime, libraryPaths: [String]) throws -> EmbeddedR {
        try started.withLock { current in
            if let current {
                guard current.runtime == runtime else {
                    throw RError("RuntimeMismatch", "this daemon already runs R \(current.runtime.version) from \(current.runtime.home); R cannot be restarted in a process: use another daemon")
                }
                guard current.libraryPaths == libraryPaths else {
                    throw RError("EnvironmentMismatch", "this daemon's R already runs with the libraries \(current.libraryPaths); R cannot be restarted in a process: use another daemon")
                }
                return current
            }
            let r = try EmbeddedR(runtime, libraryPaths: libraryPaths)
            current = r
            return r
        }
    }

    private init(_ runtime: RRuntime, libraryPaths: [String]) throws {
        self.runtime = runtime
        self.libraryPaths = libraryPaths
        // Without R_HOME set first, R prints "R home directory is not defined" and exits the process.
        setenv("R_HOME", runtime.home, 1)
        let library = try RLibrary(path: runtime.library)
        self.library = library
        helper = try thread.runAndWait {
            try Self.initialize(library, stackSize: RThread.stackSize)
            let converter = RConverter(library: library, system: nil, objects: [:])
            let helper = try converter.evaluateSource(RHelper.source)
            library.preserve(helper)
            if !libraryPaths.isEmpty {
                _ = try converter.evaluateSource(".libPaths(c(\(libraryPaths.map(RCode.quoted).joined(separator: ", ")), .libPaths()))")
            }
            try SharedVectors.register(library)
            return address(of: helper)
        }
    }

    /// Starts R on the calling thread (R's thread): no signal handlers of R's, not
    /// interactive, and a C stack check for this thread's stack of `stackSize` bytes.
    private static func initialize(_ library: RLibrary, stackSize: Int) throws {
        library.signalHandlers.pointee = 0
        let words = ["R", "--vanilla", "--silent", "--no-echo"]
        var arguments: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
        defer { arguments.forEach { free($0) } }
        _ = library.initialize(Int32(arguments.count), &arguments)
        // R measured the main thread's stack; this thread's is ours. The stack grows down
        // from about here; a margin keeps R's check ahead of the real end.
        var marker = 0
        let top = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        library.stackStart.pointee = top
        library.stackLimit.pointee = UInt(stackSize - (4 << 20))
        library.stackDirection.pointee = 1
        library.interactive.pointee = 0
        library.setupMainLoop()
    }

    // MARK: Running code

    /// Runs `text` in the environment named `environment` (made on first use, a child of
    /// the global environment) with `bindings` defined in a fresh environment inside it
    /// (nil: `text` runs in the environment itself, and what it assigns stays there).
    /// Returns the value as `RValue` (objects as handles of `system`) with the warnings;
    /// throws the R error. Cancelling the calling task interrupts R.
    func run(_ text: String, in environment: String, bindings: [(String, RValue)]?, system: KapselActorSystem) async throws -> RResult {
        let objects = self.objects.withLock { $0 }
        let call = nextCall.wrappingAdd(1, ordering: .relaxed).oldValue
        return try await withTaskCancellationHandler {
            try await thread.run { [self] in
                begin(call)
                defer { end() }
                let converter = RConverter(library: library, system: system, objects: objects)
                let scope = try self.environment(environment, converter)
                let (value, warnings, made) = try converter.run(text, in: scope, bindings: bindings, helper: helperObject)
                self.objects.withLock { $0.merge(made) { _, new in new } }
                return RResult(value: value, warnings: warnings)
            }
        } onCancel: {
            interrupt(call)
        }
    }

    private var helperObject: SEXP { object(at: helper) }

    /// The environment named `name`, made on first use (on R's thread).
    private func environment(_ name: String, _ converter: RConverter) throws -> SEXP {
        if let known = environments.withLock({ $0[name] }) { return object(at: known) }
        let made = try converter.evaluateSource("new.env(parent = globalenv())")
        library.preserve(made)
        environments.withLock { $0[name] = address(of: made) }
        return made
    }

    /// Lets R forget the environment named `name` (a session went away).
    func dropEnvironment(_ name: String) {
        guard let address = environments.withLock({ $0.removeValue(forKey: name) }) else { return }
        thread.submit { [library] in library.release(object(at: address)) }
    }

    // MARK: Objects behind handles

    /// R may let go of the object behind handle `id` (the host dropped the handle).
    func releaseObject(_ id: KapselActorID) {
        guard let address = objects.withLock({ $0.removeValue(forKey: id) }) else { return }
        thread.submit { [library] in library.release(object(at: address)) }
    }

    /// Objects R keeps for handles the host holds.
    var objectCount: Int { objects.withLock { $0.count } }

    /// Runs R's garbage collector.
    func collectGarbage() async throws {
        _ = try await thread.run { [self] in
            _ = try RConverter(library: library, system: nil, objects: [:]).evaluateSource("invisible(gc())")
            return true
        }
    }

    // MARK: Interrupts

    private func begin(_ call: UInt64) {
        running.withLock { current in
            current = call
            library.interruptsPending.pointee = 0
        }
    }

    private func end() {
        running.withLock { current in
            current = nil
            library.interruptsPending.pointee = 0
        }
    }

    /// Interrupts R if it is running `call` (from any thread); R's next check of the flag
    /// ends the call with an `Interrupted` error.
    private func interrupt(_ call: UInt64) {
        running.withLock { current in
            if current == call { library.interruptsPending.pointee = 1 }
        }
    }
}

/// R code built from Swift values.
enum RCode {
    /// `text` as an R string literal.
    static func quoted(_ text: String) -> String {
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            case "\r": escaped += "\\r"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }

    /// `name` as R reads it in code: as it is when syntactic, in backticks otherwise.
    static func name(_ name: String) -> String {
        let syntactic = name.first.map { $0.isLetter || $0 == "." } == true
            && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }
        return syntactic ? name : "`" + name.replacingOccurrences(of: "`", with: "\\`") + "`"
    }

    /// Whether `function` names a function R can call: a name, or `package::name` (or `:::`).
    static func isFunctionName(_ function: String) -> Bool {
        let parts = function.components(separatedBy: "::").flatMap { $0.components(separatedBy: ":") }.filter { !$0.isEmpty }
        guard (1...2).contains(parts.count), function.filter({ $0 == ":" }).count <= 3 else { return false }
        return parts.allSatisfy { part in
            part.first.map { $0.isLetter || $0 == "." } == true && part.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }
        }
    }
}
