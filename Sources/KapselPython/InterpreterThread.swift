import DequeModule
import Dispatch
import Foundation
import Kapsel
import Synchronization

/// The one thread that runs Python: it starts the interpreter, and it is the executor of
/// Python's actors (`PythonSession`, `PythonObject`), so their calls run here one after
/// another, in the order they came, with one thread state and warm caches.
///
/// One thread, always the same, because CPython keeps a thread state per OS thread: the
/// thread that started the interpreter has one for good, and `PyGILState_Ensure` on it
/// costs a counter. Between calls that come quickly one after another it stays awake
/// (`BusyWait`), so a call that arrives finds it running instead of paying a wake-up.
final class InterpreterThread: TaskExecutor, Sendable {
    /// Python's thread, for the life of the process (as the interpreter's).
    static let shared = InterpreterThread(name: "kapsel.python")

    private enum Work: Sendable {
        case closure(@Sendable () -> Void)
        case job(UnownedJob)
    }

    private let work = Mutex<Deque<Work>>([])
    private let ready = DispatchSemaphore(value: 0)
    private let identity = Mutex<pthread_t?>(nil)

    private init(name: String) {
        let thread = Thread { [self] in serve() }
        thread.name = name
        thread.start()
    }

    private func serve() -> Never {
        identity.withLock { $0 = pthread_self() }
        var waiting = BusyWait(busyPoll: BusyWait.defaultBusyPoll)
        while true {
            // Each push signals `ready` once; signals left over from pushes found while polling
            // only make a later sleep return early, to find the queue empty and sleep again.
            waiting.wait(until: { work.withLock { !$0.isEmpty } }, sleep: { ready.wait() })
            guard let next = work.withLock({ $0.popFirst() }) else { continue }
            switch next {
            case .closure(let body): body()
            case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
    }

    /// Whether the caller is this thread.
    var isCurrent: Bool {
        identity.withLock { $0.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        push(.job(UnownedJob(job)))
    }

    /// Runs `body` on the thread after what is queued before it.
    func submit(_ body: @escaping @Sendable () -> Void) {
        push(.closure(body))
    }

    /// Runs `body` on the thread and blocks the caller until it is done (start-up only:
    /// never from the thread itself).
    func runAndWait<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        precondition(!isCurrent, "Python's thread cannot wait for itself")
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

    private func push(_ item: Work) {
        work.withLock { $0.append(item) }
        ready.signal()
    }
}
