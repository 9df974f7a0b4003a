#if canImport(Glibc)
import Glibc
#endif

/// How `Daemons.map` runs. Every field has a default.
public struct MapOptions: Sendable {
    /// How items are grouped into jobs.
    public enum Batching: Sendable, Hashable {
        /// Sized from how long items take: one item per job while items are slow (so each
        /// goes to the first idle daemon), up to thousands per job when they take
        /// microseconds (so round trips do not dominate).
        case automatic
        /// Exactly this many items per job.
        case fixed(Int)
    }

    /// How items are grouped into jobs.
    public var batching: Batching = .automatic
    /// The longest each job may run (batching becomes one item per job).
    public var timeout: Duration?
    /// How many times a job whose daemon died is run again (nil: the pool's `crashesMax`).
    public var retries: Int?
    /// Jobs submitted and not yet consumed, at most; `2 ×` the daemons by default. Memory
    /// use is bounded by this, whatever the number of items.
    public var maxJobsInFlight: Int?
    /// Where a progress bar goes when `progress` is on (standard error by default):
    /// a terminal gets a bar redrawn in place, anything else a plain line now and then.
    public var progressDescriptor: Int32 = STDERR_FILENO
    /// Called with the progress as items complete (throttled), for programs that show
    /// progress their own way.
    public var progressHandler: (@Sendable (MapProgress) -> Void)?

    /// Default options.
    public init() {}
}

/// How far a map has come.
public struct MapProgress: Sendable, Hashable {
    /// Items finished (succeeded or failed).
    public var completed: Int
    /// Items in all, when the input is a collection.
    public var total: Int?
    /// Items that failed so far.
    public var failed: Int
    /// Time since the map started.
    public var elapsed: Duration

    /// Items per second so far.
    public var rate: Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(completed) / seconds : 0
    }

    /// The estimated time left, when the total is known and progress has been made.
    public var remaining: Duration? {
        guard let total, completed > 0, rate > 0 else { return nil }
        return .seconds(Double(total - completed) / rate)
    }
}

/// The order in which `Daemons.mapStream` delivers results.
public enum MapOrder: Sendable, Hashable {
    /// The order of the input.
    case input
    /// As items finish.
    case completion
}
