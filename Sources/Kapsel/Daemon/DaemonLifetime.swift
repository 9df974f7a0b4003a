/// When a daemon retires by itself, in agreement with its host: it says so, finishes the
/// jobs it was sent, and exits with its own exit code when the host answers. The host
/// starts a fresh daemon in its place — at once after `wallTime` or `maxJobs`
/// (recycling, for work that leaks or fragments memory), or when jobs wait again after
/// `idleTime` (a pool that shrinks to nothing when there is no work). A daemon that hosts
/// distributed actors does not retire.
public struct DaemonLifetime: Sendable, Hashable {
    /// Retire after this long without a job.
    public var idleTime: Duration?
    /// Retire once this much time has passed since the daemon started (never during a job).
    public var wallTime: Duration?
    /// Retire after this many jobs.
    public var maxJobs: Int?

    /// A lifetime; all limits are off by default.
    public init(idleTime: Duration? = nil, wallTime: Duration? = nil, maxJobs: Int? = nil) {
        precondition(maxJobs.map { $0 > 0 } ?? true, "a daemon runs at least one job")
        self.idleTime = idleTime
        self.wallTime = wallTime
        self.maxJobs = maxJobs
    }

    /// Whether any limit is set.
    var isLimited: Bool { idleTime != nil || wallTime != nil || maxJobs != nil }

    /// `idle:wall:jobs` (milliseconds, milliseconds, count; 0 for none), as a daemon's
    /// environment carries it.
    var environmentValue: String {
        "\(idleTime?.wholeMilliseconds ?? 0):\(wallTime?.wholeMilliseconds ?? 0):\(maxJobs ?? 0)"
    }

    /// Parses `environmentValue`.
    init?(environmentValue: String) {
        let parts = environmentValue.split(separator: ":").compactMap { Int64($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 >= 0 }) else { return nil }
        self.init(
            idleTime: parts[0] > 0 ? .milliseconds(parts[0]) : nil, wallTime: parts[1] > 0 ? .milliseconds(parts[1]) : nil,
            maxJobs: parts[2] > 0 ? Int(parts[2]) : nil
        )
    }
}
