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

    public var description: String {
        var lines = ["url: \(url)", "connections: \(connections)   waiting: \(waiting)   rejected: \(rejectedConnections)"]
        let showsAddresses = daemons.contains { $0.address != nil }
        let header = ["daemon", "online", "instance", "pid", "assigned", "complete", "crashed", "actors"] + (showsAddresses ? ["address"] : [])
        let rows = daemons.map { status in
            [String(status.index), status.online ? "yes" : "no", String(status.instance), status.pid.map(String.init) ?? "-",
             String(status.assigned), String(status.complete), String(status.crashed), String(status.actors)]
                + (showsAddresses ? [status.address ?? "-"] : [])
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
    /// The slot's index.
    public var index: Int
    /// Whether a daemon is connected and accepting work.
    public var online: Bool
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
}
