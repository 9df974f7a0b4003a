import KapselSharedMemory
import KapselWire

/// Effects the dispatcher's state machine asks its shell to carry out, in order,
/// after the lock is released (sends and closes are queued on their link before that).
enum DispatcherAction {
    /// Send a message (with the shared memory its envelope carries) to a daemon.
    case send(any DaemonLink, OutgoingMessage)
    /// Queue a job for a daemon busy with earlier ones: it goes out with the link's next
    /// write, at the latest when the daemon's next answer is read (the reader writes what
    /// waits then), so a burst of submissions to a busy daemon costs one write, not one each.
    case queue(any DaemonLink, OutgoingMessage)
    /// Close a daemon connection, after what was sent to it before.
    case close(any DaemonLink)
    /// Resolve a job.
    case resolve(any JobResolver, JobOutcome)
    /// Start a daemon process for a slot.
    case launch(slot: Int, instance: Int, token: String)
    /// Send a signal to a daemon process.
    case signal(pid: Int32, signal: Int32)
    /// Deliver `event` to `timerFired(_:)` after `after`.
    case schedule(TimerEvent, after: Duration)
    /// The timer of `event` is no longer needed (its job or call ended); firing anyway is harmless.
    case cancelTimer(TimerEvent)
    /// Resume tasks waiting for every daemon to be online.
    case resumeReadiness([CheckedContinuation<Void, any Error>], Result<Void, DaemonsError>)
    /// Resume tasks waiting for every daemon process to be gone.
    case resumeStopped([CheckedContinuation<Void, Never>])
    /// Resume tasks waiting for the submitted jobs to finish (a graceful shutdown).
    case resumeDrained([CheckedContinuation<Void, Never>])
    /// Tell the pool's observer (its logger and metrics) what happened.
    case observe(PoolEvent)
}

/// Something the dispatcher must look at again later.
enum TimerEvent: Sendable, Hashable {
    /// The time limit of one attempt of a job: the `attempt`-th time it was sent.
    case timeout(job: UInt64, attempt: Int)
    /// The grace a cancelled job has to stop before its daemon is killed.
    case cancelGrace(slot: Int, instance: Int, job: UInt64)
    /// The time a daemon that closed its connection has to exit before it is killed.
    case disconnectGrace(slot: Int, instance: Int)
    /// The time the host reads a dead daemon's connection before its slot ends.
    case exitDrain(slot: Int, instance: Int)
    /// The time a daemon busy when the pool stopped has to exit before it is killed.
    case stopGrace(slot: Int, instance: Int)
    /// An actor call's time limit.
    case callTimeout(call: UInt64)
    /// The time a launch has to connect.
    case launchDeadline(slot: Int, instance: Int)
    /// The time a worker may sit idle before it retires; `assigned` is its job count when
    /// it fell idle (a job since, and it was not idle all along).
    case idle(slot: Int, instance: Int, assigned: Int)

    /// Whether the shell keeps the timer so that `cancelTimer` can drop it: time limits
    /// may be long and are usually outlived; graces are short and usually fire.
    var isCancellable: Bool {
        switch self {
        case .timeout, .callTimeout: true
        case .cancelGrace, .disconnectGrace, .exitDrain, .stopGrace, .launchDeadline, .idle: false
        }
    }
}
