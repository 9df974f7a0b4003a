/// What the page shows, as the JSON it receives: every pool with its daemons, queue,
/// throughput history, events, shared memory and maps.
struct Snapshot: Codable, Sendable {
    /// One pool (a profile of a `ControllerGroup`, or a `Daemons` of its own).
    struct Pool: Codable, Sendable {
        var name: String
        var url: String
        var online: Int
        var launching: Int
        var waiting: Int
        var running: Int
        var completed: Int
        var crashes: Int
        var rejectedConnections: Int
        var sharedMemoryLentBytes: Int
        /// Jobs finished per second, one sample a second, oldest first.
        var jobsPerSecond: [Double]
        var daemons: [Daemon]
        /// Newest first.
        var events: [Event]
        var maps: [Map]
    }

    /// One daemon slot.
    struct Daemon: Codable, Sendable {
        var index: Int
        var phase: String
        var instance: Int
        var pid: Int32?
        var host: String
        var running: Int
        var assigned: Int
        var complete: Int
        var crashed: Int
        var residentBytes: Int?
        var cpuPercent: Double?
    }

    /// A crash, retry, replacement, refusal, ...
    struct Event: Codable, Sendable {
        var time: Double
        var kind: String
        var daemon: String?
        var summary: String
        var output: String?
    }

    /// A `map` under way.
    struct Map: Codable, Sendable {
        var completed: Int
        var total: Int?
        var failed: Int
        var rate: Double
        var elapsedSeconds: Double
    }

    /// Seconds since 1970.
    var time: Double
    var pools: [Pool]
}
