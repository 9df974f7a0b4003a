/// What an admitted daemon told the dispatcher in one message.
enum DaemonAnswer {
    /// A job's result.
    case job(requestID: UInt64, Completion)
    /// An actor call's (or creation's) result.
    case call(requestID: UInt64, Completion)
    /// How many actors the daemon hosts now.
    case actorCount(Int)
    /// The daemon retires, with this exit code.
    case retiring(exitCode: UInt8)
}

extension DispatcherState {
    /// The daemon of `slot` sent `answers`, in this order, read together at `now`: one
    /// event for what one read brought, so the dispatcher's lock is taken once per burst
    /// of answers rather than once per answer.
    mutating func answered(_ answers: [DaemonAnswer], slot: Int, instance: Int, at now: ContinuousClock.Instant) -> [DispatcherAction] {
        var actions: [DispatcherAction] = []
        for answer in answers {
            switch answer {
            case .job(let requestID, let completion):
                actions += jobFinished(slot: slot, instance: instance, requestID: requestID, completion: completion, at: now)
            case .call(let requestID, let completion):
                actions += callFinished(slot: slot, instance: instance, requestID: requestID, completion: completion, at: now)
            case .actorCount(let count):
                actorCountReported(slot: slot, instance: instance, count: count)
            case .retiring(let exitCode):
                actions += daemonRetiring(slot: slot, instance: instance, exitCode: exitCode)
            }
        }
        return actions
    }
}
