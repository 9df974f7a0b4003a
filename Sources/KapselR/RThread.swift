import DequeModule
import Dispatch
import Foundation
import Kapsel
import Synchronization

/// The one thread R runs on: R is not thread-safe and checks its C stack against the
/// thread that started it, so every call into R — start-up, evaluation, conversion, a
/// finalizer's release — is a job run here, one at a time, in the order submitted.
///
/// The thread has a stack of its own, large enough for what R and the packages it loads
/// recurse into (R's own stack check is set to it). It is the executor of R's actors'
/// calls too (`KapselActor.callExecutor`), so a call runs here from decoding to answering;
/// between calls that come quickly one after another it stays awake (`BusyWait`), so a
/// call that arrives finds it running instead of paying a wake-up.
final class RThread: TaskExecutor, Sendable {
    /// The thread of this process's R (and of its actors' executor).
    static let shared = RThread()

    /// Bytes of stack the thread gets.
    static let stackSize = 64 << 20

    private let jobs = Mutex<Deque<@Sendable () -> Void>>([])
    private let ready = DispatchSemaphore(value: 0)
    /// The thread's id, once it runs.
    private let identity = Mutex<pthread_t?>(nil)

    /// Starts the thread, which lives as long as the process (as R does).
    private init() {
        let thread = Thread { [self] in serve() }
        thread.name = "kapsel.r"
        thread.stackSize = Self.stackSize
        thread.start()
    }

    private func serve() -> Never {
        identity.withLock { $0 = pthread_self() }
        var waiting = BusyWait(busyPoll: BusyWait.defaultBusyPoll)
        while true {
            // Each submission signals `ready` once; signals left over from submissions found
            // while polling only make a later sleep return early, to find no job and sleep again.
            waiting.wait(until: { jobs.withLock { !$0.isEmpty } }, sleep: { ready.wait() })
            if let job = jobs.withLock({ $0.popFirst() }) { job() }
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        submit { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Whether the caller is this thread.
    var isCurrent: Bool {
        identity.withLock { $0.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    /// Runs `body` on the thread, after what was submitted before, and waits for it; at
    /// once when the caller is on the thread already (an R actor's method).
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        if isCurrent { return try body() }
        return try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result(catching: body)) }
        }
    }

    /// Runs `body` on the thread and blocks the caller until it is done (start-up only:
    /// never from the thread itself).
    func runAndWait<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        precondition(!isCurrent, "the R thread cannot wait for itself")
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        submit {
            let outcome = Result(catching: body)
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// Queues `job` without waiting for it.
    func submit(_ job: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.append(job) }
        ready.signal()
    }
}
