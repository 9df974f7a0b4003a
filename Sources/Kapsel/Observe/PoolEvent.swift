/// Something that happened to a pool's daemons, told by the dispatcher's state machine
/// (an `observe` action) to the pool's `PoolObserver`, which logs it and counts it.
///
/// The state machine only says what happened; levels, messages and metrics are the
/// observer's, so the rules stay free of I/O and their tests can check the events.
enum PoolEvent: Sendable {
    /// A daemon process was started for a slot.
    case launched(slot: Int, instance: Int, pid: Int32)
    /// A daemon could not be started, or ended before it connected.
    case launchFailed(slot: Int, instance: Int, reason: String)
    /// A slot failed to start too often in a row and was given up.
    case slotGivenUp(slot: Int, reason: String)
    /// A daemon connected and was admitted.
    case online(DaemonIdentity, address: String?)
    /// A daemon died on its own (a signal, an exit code that is no retirement); `jobType`
    /// is the job it was running, if any.
    case crashed(DaemonIdentity, termination: ProcessTermination?, output: String?, jobType: String?)
    /// A daemon's connection failed or was closed by the host (a protocol violation, a
    /// heartbeat that stopped, a cut link).
    case connectionFailed(DaemonIdentity, reason: String)
    /// A daemon retired (its lifetime, idleness, or a restart) and left.
    case retired(DaemonIdentity, reason: String)
    /// A new daemon was launched in place of one that ended.
    case replaced(slot: Int, instance: Int)
    /// A connection was refused before it became a daemon.
    case refused(address: String?, reason: String)
    /// A job ran past its time limit and was stopped.
    case timedOut(job: UInt64, jobType: String, daemon: DaemonIdentity?)
    /// A daemon did not stop a cancelled or timed-out job in time and was killed.
    case killedUnresponsive(DaemonIdentity, job: UInt64)
    /// A job whose daemon died under it runs again.
    case retried(job: UInt64, jobType: String, daemon: DaemonIdentity)
    /// A job left the queue for its first daemon (told only when the observer measures
    /// queue waits).
    case started(any JobResolver)
}
