/// The exit codes of a daemon process, so a supervisor can tell why it ended
/// (values from `sysexits.h` where one fits).
public enum DaemonExitCode: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// The host asked it to stop.
    case stopped = 0
    /// Cannot connect to the host (`EX_NOHOST`).
    case cannotConnect = 68
    /// The connection to the host closed without a stop request: the host is gone (`EX_UNAVAILABLE`).
    case hostLost = 69
    /// The host broke the protocol (`EX_PROTOCOL`).
    case protocolError = 76
    /// The host refused the daemon, or could not prove it knows the secret (`EX_NOPERM`).
    case refused = 77
    /// The daemon's configuration is missing or invalid, or the executable never
    /// called `Kapsel.bootstrap(jobs:)` (`EX_CONFIG`).
    case configuration = 78
    /// It retired after `DaemonLifetime.idleTime` without work.
    case idle = 80
    /// It retired once `DaemonLifetime.wallTime` had passed.
    case wallTime = 81
    /// It retired after running `DaemonLifetime.maxJobs` jobs.
    case maxJobs = 82

    public var description: String {
        switch self {
        case .stopped: "stopped by its host"
        case .cannotConnect: "cannot connect to its host"
        case .hostLost: "lost its host"
        case .protocolError: "protocol error"
        case .refused: "refused by its host"
        case .configuration: "configuration error"
        case .idle: "retired when idle"
        case .wallTime: "retired at its wall time"
        case .maxJobs: "retired after its maximum number of jobs"
        }
    }
}

extension DaemonExitCode {
    /// Whether the daemon ended by retiring (`DaemonLifetime`), in agreement with its host.
    var isRetirement: Bool {
        self == .idle || self == .wallTime || self == .maxJobs
    }
}
