import Dispatch
import Foundation
import Synchronization

/// The one thread that runs Python: it starts the interpreter and runs every request after,
/// in the order they came.
///
/// One thread, always the same, because CPython keeps a thread state per OS thread: the
/// thread that started the interpreter has one for good, and `PyGILState_Ensure` on it
/// costs a counter. On threads that come and go (a dispatch queue's workers) every
/// request made a thread state and its frame stack, and dropped them after: an `mmap`
/// and a `munmap` per call (about 5 % of the interpreter thread's time in W9's calls).
final class InterpreterThread: Sendable {
    private let work = Mutex<[@Sendable () -> Void]>([])
    private let ready = DispatchSemaphore(value: 0)

    /// Starts the thread, named `name`; it runs for the life of the process, as the
    /// interpreter does.
    init(name: String) {
        let thread = Thread { [self] in runRequests() }
        thread.name = name
        thread.start()
    }

    private func runRequests() -> Never {
        while true {
            ready.wait()
            let next = work.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            next?()
        }
    }

    /// Runs `body` on the thread after what is queued before it.
    func async(_ body: @escaping @Sendable () -> Void) {
        work.withLock { $0.append(body) }
        ready.signal()
    }

    /// Runs `body` on the thread and waits for its value.
    func sync<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        async {
            let value = body()
            result.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }
}
