import Synchronization

/// Where a map's finished jobs wait for its consumer: filled from the threads that
/// resolve jobs, emptied by the consuming task, which waits for one job in particular
/// (input order) or any (completion order).
final class MapCompletions<Value: Sendable>: Sendable {
    typealias Completion = (id: Int, value: Value)

    private struct State {
        var done: [Int: Value] = [:]
        var waiter: (target: Int?, continuation: CheckedContinuation<Completion?, Never>)?
    }

    private let state = Mutex(State())

    /// Job `id` finished.
    func put(_ id: Int, _ value: Value) {
        let waiter: CheckedContinuation<Completion?, Never>? = state.withLock { state in
            if let waiter = state.waiter, waiter.target == nil || waiter.target == id {
                state.waiter = nil
                return waiter.continuation
            }
            state.done[id] = value
            return nil
        }
        waiter?.resume(returning: (id, value))
    }

    /// Waits for job `target` (or any job, if nil) to finish; nil if the waiting task is cancelled.
    func take(_ target: Int?) async -> Completion? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Completion?, Never>) in
                let ready: Completion? = state.withLock { state in
                    if let target {
                        if let value = state.done.removeValue(forKey: target) { return (target, value) }
                    } else if let first = state.done.first {
                        state.done.removeValue(forKey: first.key)
                        return (first.key, first.value)
                    }
                    state.waiter = (target, continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter?.continuation
            }
            waiter?.resume(returning: nil)
        }
    }
}
