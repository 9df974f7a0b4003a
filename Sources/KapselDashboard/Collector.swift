import Foundation
import Kapsel
import Synchronization

/// Gathers what the page shows: samples every pool's status and its daemons' `/proc`
/// figures once per update interval, keeps a second-by-second history of jobs per second
/// and the pools' latest events, and holds the newest snapshot as JSON for every client.
///
/// However many jobs a second the pools run, clients get at most one snapshot per
/// interval: the figures are read, never pushed per job.
final class Collector: Sendable {
    private struct PoolHistory {
        var lastCompleted: Int?
        var lastSample: ContinuousClock.Instant?
        var jobsPerSecond: [Double] = []
        var events: [Snapshot.Event] = []
        /// The CPU time of each daemon process at the previous sample.
        var cpu: [Int32: (seconds: Double, at: ContinuousClock.Instant)] = [:]
    }

    private struct State {
        var histories: [PoolHistory]
        var json: [UInt8] = Array("{}".utf8)
        var version = 0
    }

    let pools: [(name: String, daemons: Daemons)]
    let settings: DashboardSettings
    private let state: Mutex<State>

    init(pools: [(name: String, daemons: Daemons)], settings: DashboardSettings) {
        self.pools = pools
        self.settings = settings
        self.state = Mutex(State(histories: Array(repeating: PoolHistory(), count: pools.count)))
    }

    /// The newest snapshot as JSON, and its version (higher is newer).
    var latest: (json: [UInt8], version: Int) {
        state.withLock { ($0.json, $0.version) }
    }

    /// Samples until cancelled; collects each pool's events meanwhile.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for (index, pool) in pools.enumerated() {
                group.addTask { await self.collectEvents(of: pool.daemons, into: index) }
            }
            group.addTask {
                while !Task.isCancelled {
                    self.sample()
                    try? await Task.sleep(for: self.settings.updateInterval)
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func collectEvents(of daemons: Daemons, into index: Int) async {
        for await event in daemons.events(replaying: true, limit: settings.eventLimit) {
            guard event.kind != .launched, event.kind != .online else { continue }
            let row = Snapshot.Event(time: event.time, kind: event.kind.rawValue, daemon: event.daemon.map { "\($0.index)" }, summary: event.summary, output: event.output)
            state.withLock { state in
                state.histories[index].events.insert(row, at: 0)
                if state.histories[index].events.count > settings.eventLimit { state.histories[index].events.removeLast() }
            }
            if Task.isCancelled { return }
        }
    }

    /// Reads every pool now and publishes a new snapshot.
    func sample() {
        let now = ContinuousClock.now
        let readings = pools.map { pool in
            (status: pool.daemons.status(), lent: pool.daemons.sharedMemoryLent, maps: pool.daemons.runningMaps)
        }
        let stats = readings.map { reading in
            Dictionary(reading.status.daemons.compactMap { daemon in daemon.pid.flatMap { pid in ProcessStats.of(pid).map { (pid, $0) } } }) { first, _ in first }
        }
        state.withLock { state in
            var pools: [Snapshot.Pool] = []
            for (index, reading) in readings.enumerated() {
                pools.append(record(reading.status, lent: reading.lent, maps: reading.maps, stats: stats[index], now: now, history: &state.histories[index], name: self.pools[index].name))
            }
            let snapshot = Snapshot(time: Date().timeIntervalSince1970, pools: pools)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            state.json = (try? Array(encoder.encode(snapshot))) ?? state.json
            state.version += 1
        }
    }

    private func record(
        _ status: DaemonsStatus, lent: Int, maps: [MapProgress], stats: [Int32: ProcessStats], now: ContinuousClock.Instant, history: inout PoolHistory, name: String
    ) -> Snapshot.Pool {
        let completed = status.daemons.reduce(0) { $0 + $1.complete }
        // One throughput sample a second.
        if let last = history.lastSample, let lastCompleted = history.lastCompleted {
            let elapsed = now - last
            if elapsed >= .seconds(1) {
                history.jobsPerSecond.append(Double(max(0, completed - lastCompleted)) / elapsed.seconds)
                if history.jobsPerSecond.count > settings.history { history.jobsPerSecond.removeFirst() }
                history.lastSample = now
                history.lastCompleted = completed
            }
        } else {
            history.lastSample = now
            history.lastCompleted = completed
        }
        var cpu: [Int32: (seconds: Double, at: ContinuousClock.Instant)] = [:]
        let daemons = status.daemons.map { daemon -> Snapshot.Daemon in
            var row = Snapshot.Daemon(
                index: daemon.index, phase: daemon.phase.rawValue, instance: daemon.instance, pid: daemon.pid, host: daemon.address ?? "local",
                running: daemon.running, assigned: daemon.assigned, complete: daemon.complete, crashed: daemon.crashed
            )
            if let pid = daemon.pid, let figures = stats[pid] {
                row.residentBytes = figures.residentBytes
                if let before = history.cpu[pid], now > before.at {
                    row.cpuPercent = max(0, (figures.cpuSeconds - before.seconds) / (now - before.at).seconds * 100)
                }
                cpu[pid] = (figures.cpuSeconds, now)
            }
            return row
        }
        history.cpu = cpu
        return Snapshot.Pool(
            name: name, url: status.url, online: status.online, launching: status.launching, waiting: status.waiting,
            running: status.daemons.reduce(0) { $0 + $1.running }, completed: completed, crashes: status.crashes,
            rejectedConnections: status.rejectedConnections, sharedMemoryLentBytes: lent, jobsPerSecond: history.jobsPerSecond,
            daemons: daemons, events: history.events,
            maps: maps.map { Snapshot.Map(completed: $0.completed, total: $0.total, failed: $0.failed, rate: $0.rate, elapsedSeconds: $0.elapsed.seconds) }
        )
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
