/// A graceful shutdown in the dispatcher's state machine: the pool stops taking jobs,
/// and those already submitted run to their end while the daemons stay (a daemon that
/// dies meanwhile is replaced, and its job retried as usual).
extension DispatcherState {
    /// Stops taking jobs: from now on `submit` and `everywhere` resolve `.shuttingDown`.
    mutating func stopAccepting() -> [DispatcherAction] {
        accepting = false
        return drainedActions()
    }

    /// Registers a continuation resumed once no submitted job or actor call is left
    /// unresolved (or the pool stops, or `drainTimedOut`).
    mutating func awaitDrained(_ continuation: CheckedContinuation<Void, Never>) -> [DispatcherAction] {
        drainWaiters.append(continuation)
        return drainedActions()
    }

    /// The grace for the submitted jobs passed: those waiting to drain wait no more.
    mutating func drainTimedOut() -> [DispatcherAction] {
        guard !drainWaiters.isEmpty else { return [] }
        defer { drainWaiters = [] }
        return [.resumeDrained(drainWaiters)]
    }

    /// Whether someone waits for the pool to drain (checked after every event).
    var awaitsDrain: Bool { !drainWaiters.isEmpty }

    /// Resumes the tasks waiting for the pool to drain, if it has.
    mutating func drainedActions() -> [DispatcherAction] {
        guard !drainWaiters.isEmpty, phase == .stopping || isDrained else { return [] }
        defer { drainWaiters = [] }
        return [.resumeDrained(drainWaiters)]
    }

    /// No job waits or runs and no actor call is unanswered. The setup runs pinned to a
    /// slot that has not started (`everywhere` on a parked slot) do not count: they run
    /// only when it starts.
    private var isDrained: Bool {
        jobs.waiting.isEmpty && actors.calls.isEmpty
            && slots.all.allSatisfy { slot in slot.inFlight.isEmpty && slot.pinned.allSatisfy { jobs[$0]?.setupTemplate != nil } }
    }
}
