import CKapselShim
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Starts child processes, watches them, captures the tail of their output, and
/// reaps them, all on one dedicated thread that lives as long as the process.
///
/// Why one long-lived thread: on Linux the parent-death signal of a child fires when
/// the *thread* that spawned it exits, so children must be spawned from a thread that
/// never exits. The same thread waits (with `poll`) on a pidfd per child, which
/// becomes readable when the child exits, and on the child's output pipe; it reaps
/// with `waitpid` so no child is ever left a zombie. Signals go through the pidfd
/// (`pidfd_send_signal`), so a recycled pid is never signalled by mistake.
///
/// Exit callbacks run on the supervisor thread: they must not block.
final class ProcessSupervisor: Sendable {
    /// The supervisor of this process.
    static let shared = ProcessSupervisor()

    /// What to start.
    struct SpawnRequest: Sendable {
        var executable: String
        var arguments: [String]
        var environment: [String: String]
        /// Keep this many bytes of the child's combined output for `onExit`.
        var outputTailCapacity: Int = 8192
        /// Also copy the child's output to this process's standard error.
        var forwardOutput: Bool = false
        /// A descriptor the child gets as its descriptor 3; closed here once the child started.
        var extraDescriptor: Int32?
        /// Called on the supervisor thread with each line the child prints (it must not block).
        var onOutputLine: (@Sendable (pid_t, String) -> Void)?
    }

    /// A child that has ended.
    struct ExitReport: Sendable {
        var pid: pid_t
        var termination: ProcessTermination
        /// The last bytes the child wrote, as text.
        var outputTail: String?
    }

    private enum Request {
        case spawn(SpawnRequest, started: @Sendable (Result<pid_t, SpawnError>) -> Void, exited: @Sendable (ExitReport) -> Void)
        case signal(pid_t, Int32)
    }

    private let requests = Mutex<[Request]>([])
    private let wakeWriteFD: Int32

    private init() {
        var fds: [Int32] = [0, 0]
        guard kapsel_pipe_cloexec(&fds) == 0 else { fatalError("kapsel: cannot create the supervisor's wake-up pipe: errno \(errno)") }
        _ = kapsel_set_nonblocking(fds[0], 1)
        _ = kapsel_set_nonblocking(fds[1], 1)
        wakeWriteFD = fds[1]
        let wakeReadFD = fds[0]
        startDetachedThread { [self] in
            var loop = SupervisorLoop(wakeReadFD: wakeReadFD)
            loop.run(takeRequests: { self.takeRequests() })
        }
    }

    /// Starts a child. `started` receives its pid (or the reason it could not start);
    /// `exited` is called exactly once, after the child has been reaped.
    func spawn(
        _ request: SpawnRequest,
        started: @escaping @Sendable (Result<pid_t, SpawnError>) -> Void,
        exited: @escaping @Sendable (ExitReport) -> Void
    ) {
        enqueue(.spawn(request, started: started, exited: exited))
    }

    /// Sends `signal` to a child this supervisor started, if it has not been reaped yet.
    func signal(_ pid: pid_t, _ signal: Int32) {
        enqueue(.signal(pid, signal))
    }

    private func enqueue(_ request: Request) {
        requests.withLock { $0.append(request) }
        var byte: UInt8 = 1
        _ = write(wakeWriteFD, &byte, 1)
    }

    private func takeRequests() -> [Request] {
        requests.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
    }

    /// The supervisor thread's own state; never touched by another thread.
    private struct SupervisorLoop {
        struct Child {
            let pid: pid_t
            let pidfd: Int32
            var outputFD: Int32
            var tail: OutputTail
            let forward: Bool
            /// The child's output as lines, for `onOutputLine`.
            var lines: OutputLines?
            let onOutputLine: (@Sendable (pid_t, String) -> Void)?
            let exited: @Sendable (ExitReport) -> Void
        }

        let wakeReadFD: Int32
        var children: [Child] = []

        mutating func run(takeRequests: () -> [Request]) -> Never {
            var pollSet: [pollfd] = []
            while true {
                pollSet.removeAll(keepingCapacity: true)
                pollSet.append(pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0))
                for child in children {
                    pollSet.append(pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0))
                    pollSet.append(pollfd(fd: child.outputFD, events: Int16(POLLIN), revents: 0))
                }
                let ready = poll(&pollSet, nfds_t(pollSet.count), -1)
                if ready < 0 {
                    if errno == EINTR { continue }
                    fatalError("kapsel: the process supervisor's poll failed: errno \(errno)")
                }
                if pollSet[0].revents != 0 {
                    drainWakeups()
                    for request in takeRequests() { handle(request) }
                }
                // Output first, so a child's last words are kept before it is reported.
                var exitedPIDs: [pid_t] = []
                for (offset, entry) in pollSet.enumerated().dropFirst() where entry.revents != 0 {
                    let childIndex = (offset - 1) / 2
                    guard childIndex < children.count else { continue }
                    if offset % 2 == 0 {
                        readOutput(ofChildAt: childIndex)
                    } else if entry.fd == children[childIndex].pidfd {
                        exitedPIDs.append(children[childIndex].pid)
                    }
                }
                for pid in exitedPIDs { reap(pid) }
            }
        }

        private func drainWakeups() {
            var scratch = [UInt8](repeating: 0, count: 256)
            while read(wakeReadFD, &scratch, scratch.count) > 0 {}
        }

        private mutating func handle(_ request: Request) {
            switch request {
            case .spawn(let spec, let started, let exited):
                let outcome = startChild(spec)
                if let extra = spec.extraDescriptor { close(extra) }
                switch outcome {
                case .success(let child):
                    children.append(Child(
                        pid: child.pid, pidfd: child.pidfd, outputFD: child.outputFD, tail: OutputTail(capacity: spec.outputTailCapacity), forward: spec.forwardOutput,
                        lines: spec.onOutputLine == nil ? nil : OutputLines(), onOutputLine: spec.onOutputLine, exited: exited
                    ))
                    started(.success(child.pid))
                case .failure(let error):
                    started(.failure(error))
                }
            case .signal(let pid, let signal):
                guard let child = children.first(where: { $0.pid == pid }) else { return }
                _ = kapsel_pidfd_send_signal(child.pidfd, signal)
            }
        }

        private func startChild(_ spec: SpawnRequest) -> Result<(pid: pid_t, pidfd: Int32, outputFD: Int32), SpawnError> {
            var outputPipe: [Int32] = [0, 0]
            guard kapsel_pipe_cloexec(&outputPipe) == 0 else { return .failure(SpawnError(spec.executable, errno: errno, step: "creating the output pipe")) }
            let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
            defer {
                close(outputPipe[1])
                if devNull >= 0 { close(devNull) }
            }
            let argv = [spec.executable] + spec.arguments
            let envp = spec.environment.map { "\($0.key)=\($0.value)" }
            var pid: pid_t = 0
            let rc = withCStringArray(argv) { argvPointer in
                withCStringArray(envp) { envPointer in
                    kapsel_spawn_with_extra_fd(spec.executable, argvPointer, envPointer, devNull, outputPipe[1], outputPipe[1], spec.extraDescriptor ?? -1, 1, &pid)
                }
            }
            guard rc == 0 else {
                close(outputPipe[0])
                return .failure(SpawnError(spec.executable, errno: rc, step: "starting it"))
            }
            let pidfd = kapsel_pidfd_open(pid)
            guard pidfd >= 0 else {
                let error = errno
                kill(pid, SIGKILL)
                var status: Int32 = 0
                _ = waitpid(pid, &status, 0)
                close(outputPipe[0])
                return .failure(SpawnError(spec.executable, errno: error, step: "opening a pidfd for it"))
            }
            _ = kapsel_set_nonblocking(outputPipe[0], 1)
            return .success((pid, pidfd, outputPipe[0]))
        }

        private mutating func readOutput(ofChildAt index: Int) {
            var buffer = [UInt8](repeating: 0, count: 16384)
            while children[index].outputFD >= 0 {
                let count = read(children[index].outputFD, &buffer, buffer.count)
                if count > 0 {
                    buffer.withUnsafeBytes { raw in
                        let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<count])
                        children[index].tail.append(chunk)
                        if children[index].forward { _ = write(STDERR_FILENO, chunk.baseAddress, count) }
                        if let onLine = children[index].onOutputLine {
                            let pid = children[index].pid
                            children[index].lines?.append(chunk) { onLine(pid, $0) }
                        }
                    }
                } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                    // End of output: keep polling the pidfd only (a closed fd is skipped by poll when negative).
                    close(children[index].outputFD)
                    children[index].outputFD = -1
                } else {
                    return
                }
            }
        }

        private mutating func reap(_ pid: pid_t) {
            guard let index = children.firstIndex(where: { $0.pid == pid }) else { return }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            guard result == pid else { return }
            readOutput(ofChildAt: index)
            var child = children.remove(at: index)
            if let onLine = child.onOutputLine { child.lines?.finish { onLine(pid, $0) } }
            if child.outputFD >= 0 { close(child.outputFD) }
            close(child.pidfd)
            child.exited(ExitReport(pid: pid, termination: ProcessTermination(waitStatus: status), outputTail: child.tail.text))
        }
    }
}

/// A child process that could not be started.
struct SpawnError: Error, CustomStringConvertible, Sendable {
    let executable: String
    let errno: Int32
    let step: String

    init(_ executable: String, errno: Int32, step: String) {
        self.executable = executable
        self.errno = errno
        self.step = step
    }

    var description: String {
        "cannot start \(executable): \(step) failed: \(String(cString: strerror(errno)))"
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Runs `body` on a new detached thread.
func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { context in
        let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
        box.body()
        return nil
    }, context)
    precondition(rc == 0, "kapsel: cannot start a thread: error \(rc)")
    pthread_detach(thread)
}
