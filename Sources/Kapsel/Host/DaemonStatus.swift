/// A snapshot of a pool of daemons, as `Daemons.status()` returns it.
public struct DaemonsStatus: Sendable, CustomStringConvertible {
    /// The address daemons connect to.
    public var url: String
    /// Authenticated daemon connections open now.
    public var connections: Int
    /// Jobs waiting for a daemon.
    public var waiting: Int
    /// Per daemon slot.
    public var daemons: [DaemonStatus]
    /// Connections refused (wrong secret, bad frames, unknown daemons).
    public var rejectedConnections: Int
    /// Why the last connection was refused.
    public var lastRejection: String?

    /// Workers launched and not connected yet.
    public var launching: Int { daemons.count { $0.phase == .launching } }
    /// Workers connected and taking work.
    public var online: Int { daemons.count { $0.phase == .online } }
    /// Workers connected and holding nothing.
    public var idle: Int { daemons.count { $0.phase == .online && $0.running == 0 } }
    /// Times a worker died unexpectedly, over all slots.
    public var crashes: Int { daemons.reduce(0) { $0 + $1.crashed } }

    public var description: String {
        var lines = [
            "url: \(url)", "connections: \(connections)   waiting: \(waiting)   rejected: \(rejectedConnections)",
            "workers: \(online) online (\(idle) idle), \(launching) launching, \(daemons.count { $0.phase == .parked }) parked   crashes: \(crashes)",
        ]
        let showsAddresses = daemons.contains { $0.address != nil }
        let showsBatchJobs = daemons.contains { $0.batchJob != nil }
        let header = ["daemon", "state", "instance", "pid", "assigned", "complete", "crashed", "actors"]
            + (showsAddresses ? ["address"] : []) + (showsBatchJobs ? ["batch job"] : [])
        let rows = daemons.map { status -> [String] in
            var row = [String(status.index), status.phase.rawValue, String(status.instance), status.pid.map(String.init) ?? "-"]
            row += [String(status.assigned), String(status.complete), String(status.crashed), String(status.actors)]
            if showsAddresses { row.append(status.address ?? "-") }
            if showsBatchJobs { row.append(status.batchJob ?? "-") }
            return row
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        for row in [header] + rows {
            lines.append(row.enumerated().map { column, cell in
                String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }
}

/// One daemon slot in `DaemonsStatus`.
public struct DaemonStatus: Sendable, Hashable {
    /// Where a slot's worker is in its life.
    public enum Phase: String, Sendable, Hashable {
        /// Launched (or awaited, for one started by hand), not connected yet.
        case launching
        /// Connected and taking work.
        case online
        /// Leaving: it takes no more work.
        case retiring
        /// No worker: a pool that scales waits for work before starting one.
        case parked
        /// Given up after failing to start too often.
        case failed
        /// Gone with the stopped pool.
        case stopped
    }

    /// The slot's index.
    public var index: Int
    /// Where the slot's worker is in its life.
    public var phase: Phase
    /// Whether a daemon is connected and accepting work.
    public var online: Bool { phase == .online }
    /// Jobs sent to the daemon and not answered yet.
    public var running: Int
    /// How many processes have held this slot so far (grows with each replacement).
    public var instance: Int
    /// The current process id, if one is running.
    public var pid: Int32?
    /// Jobs sent to this slot, over all its instances.
    public var assigned: Int
    /// Jobs this slot answered, over all its instances.
    public var complete: Int
    /// Times a daemon in this slot died unexpectedly.
    public var crashed: Int
    /// Distributed actors alive in the daemon, as it last reported.
    public var actors: Int = 0
    /// Where a daemon connected over TCP connects from (`IP:port`).
    public var address: String?
    /// The resource manager's job the daemon runs in, as it said when it connected
    /// (`slurm 1234`); nil for daemons started otherwise.
    public var batchJob: String?
}
