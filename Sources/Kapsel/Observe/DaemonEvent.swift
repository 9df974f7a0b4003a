#if canImport(Glibc)
import Glibc
#endif

/// Something that happened to a pool's daemons, as `Daemons.events()` delivers it: for
/// dashboards and monitoring of your own. The same events reach `DaemonOptions.logger`.
public struct DaemonEvent: Sendable, Hashable {
    /// What happened.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// A daemon process was started.
        case launched
        /// A daemon connected and was admitted.
        case online
        /// A daemon could not start, or ended before it connected.
        case launchFailed
        /// A slot failed to start too often in a row and was given up.
        case slotGivenUp
        /// A daemon died on its own: a signal, or an exit code that is no retirement.
        case crashed
        /// A daemon's connection failed or was closed for a violation or lost heartbeat.
        case connectionFailed
        /// A daemon retired and left.
        case retired
        /// A new daemon was launched in place of one that ended.
        case replaced
        /// A connection was refused before it became a daemon.
        case refused
        /// A job ran past its time limit.
        case timedOut
        /// A daemon that did not stop a cancelled job in time was killed.
        case killed
        /// A job whose daemon died under it runs again.
        case retried
    }

    /// What happened.
    public var kind: Kind
    /// When, in seconds since 1970.
    public var time: Double
    /// The daemon it concerns, where there is one.
    public var daemon: DaemonIdentity?
    /// One line for people: the reason, the job type, the termination.
    public var summary: String
    /// How a crashed daemon ended.
    public var termination: ProcessTermination?
    /// The last lines a crashed daemon printed.
    public var output: String?

    /// An event at the current time.
    init(_ kind: Kind, daemon: DaemonIdentity? = nil, summary: String, termination: ProcessTermination? = nil, output: String? = nil) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        self.kind = kind
        self.time = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        self.daemon = daemon
        self.summary = summary
        self.termination = termination
        self.output = output
    }

    /// The public form of what the state machine told the observer; nil for what is
    /// internal bookkeeping (a job leaving the queue).
    init?(_ event: PoolEvent) {
        switch event {
        case .launched(let slot, let instance, let pid):
            self.init(.launched, daemon: DaemonIdentity(index: slot, instance: instance, pid: pid), summary: "daemon \(slot) launched as pid \(pid)")
        case .launchFailed(let slot, let instance, let reason):
            self.init(.launchFailed, daemon: DaemonIdentity(index: slot, instance: instance, pid: nil), summary: reason)
        case .slotGivenUp(let slot, let reason):
            self.init(.slotGivenUp, daemon: DaemonIdentity(index: slot, instance: 0, pid: nil), summary: reason)
        case .online(let daemon, let address):
            self.init(.online, daemon: daemon, summary: "online" + (address.map { " from \($0)" } ?? ""))
        case .crashed(let daemon, let termination, let output, let jobType):
            let running = jobType.map { " running \($0)" } ?? ""
            self.init(.crashed, daemon: daemon, summary: "died with \(DispatcherState.explain(termination))\(running)", termination: termination,
                      output: output.map { PoolObserver.lastLines(of: $0) })
        case .connectionFailed(let daemon, let reason):
            self.init(.connectionFailed, daemon: daemon, summary: reason)
        case .retired(let daemon, let reason):
            self.init(.retired, daemon: daemon, summary: "retired: \(reason)")
        case .replaced(let slot, let instance):
            self.init(.replaced, daemon: DaemonIdentity(index: slot, instance: instance, pid: nil), summary: "replaced by instance \(instance)")
        case .refused(let address, let reason):
            self.init(.refused, summary: (address.map { "\($0): " } ?? "") + reason)
        case .timedOut(let job, let jobType, let daemon):
            self.init(.timedOut, daemon: daemon, summary: "job \(job) (\(jobType)) ran past its time limit")
        case .killedUnresponsive(let daemon, let job):
            self.init(.killed, daemon: daemon, summary: "killed: it did not stop job \(job) in time")
        case .retried(let job, let jobType, let daemon):
            self.init(.retried, daemon: daemon, summary: "job \(job) (\(jobType)) runs again after its daemon died")
        case .started:
            return nil
        }
    }
}
