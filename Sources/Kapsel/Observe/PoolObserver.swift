import DequeModule
import Logging
import Synchronization

/// Where a pool's events go: its `Logger` (`DaemonOptions.logger`) and its metrics
/// (`PoolMetrics`). The dispatcher's shell hands it every `PoolEvent` and every job
/// resolution, outside the dispatcher's lock.
///
/// Levels follow swift-log's guidance for libraries: the happy path (launches, daemons
/// coming online, retirements, replacements) is `.debug`; what a user may act on —
/// crashes, lost connections, refused peers, jobs stopped for their time limit, launches
/// that fail — is `.warning` (`.notice` for time limits and retries, `.error` for a slot
/// given up); a daemon's own output lines are `.info`.
final class PoolObserver: Sendable {
    /// The pool's logger, with `kapsel.pool` in its metadata; nil when nobody listens.
    let logger: Logger?
    /// The pool's metrics; nil when no metrics backend is bootstrapped or given.
    let metrics: PoolMetrics?
    /// The streams of `Daemons.events()` by subscription (nil once the pool stopped), and
    /// the latest events, for streams that start with them.
    private let feed = Mutex(EventFeed())
    private let nextSubscription = Atomic<Int>(0)

    private struct EventFeed {
        var subscribers: [Int: AsyncStream<DaemonEvent>.Continuation]? = [:]
        var recent: Deque<DaemonEvent> = []
    }

    /// How many of the latest events a pool keeps for `Daemons.events(replaying:)`.
    static let recentLimit = 200

    init(name: String, logger: Logger?, metrics: PoolMetrics?) {
        self.logger = logger.map { logger in
            var logger = logger
            logger[metadataKey: "kapsel.pool"] = "\(name)"
            return logger
        }
        self.metrics = metrics
    }

    /// Logs and counts what happened.
    func observe(_ event: PoolEvent) {
        metrics?.count(event)
        publish(event)
        guard let logger else { return }
        switch event {
        case .launched(let slot, let instance, let pid):
            logger.debug("daemon launched", metadata: Self.metadata(slot: slot, instance: instance, pid: pid))
        case .launchFailed(let slot, let instance, let reason):
            logger.warning("daemon launch failed", metadata: Self.metadata(slot: slot, instance: instance).merging(["kapsel.reason": "\(reason)"]) { $1 })
        case .slotGivenUp(let slot, let reason):
            logger.error("daemon slot given up after repeated failed starts", metadata: ["kapsel.daemon": "\(slot)", "kapsel.reason": "\(reason)"])
        case .online(let daemon, let address):
            var metadata = Self.metadata(daemon)
            if let address { metadata["kapsel.address"] = "\(address)" }
            logger.debug("daemon online", metadata: metadata)
        case .crashed(let daemon, let termination, let output, let jobType):
            var metadata = Self.metadata(daemon)
            metadata["kapsel.termination"] = "\(DispatcherState.explain(termination))"
            if let jobType { metadata["kapsel.jobType"] = "\(jobType)" }
            if let output { metadata["kapsel.output"] = "\(Self.lastLines(of: output))" }
            logger.warning("daemon crashed", metadata: metadata)
        case .connectionFailed(let daemon, let reason):
            logger.warning("daemon connection failed", metadata: Self.metadata(daemon).merging(["kapsel.reason": "\(reason)"]) { $1 })
        case .retired(let daemon, let reason):
            logger.debug("daemon retired", metadata: Self.metadata(daemon).merging(["kapsel.reason": "\(reason)"]) { $1 })
        case .replaced(let slot, let instance):
            logger.debug("daemon replaced", metadata: Self.metadata(slot: slot, instance: instance))
        case .refused(let address, let reason):
            var metadata: Logger.Metadata = ["kapsel.reason": "\(reason)"]
            if let address { metadata["kapsel.address"] = "\(address)" }
            logger.warning("connection refused", metadata: metadata)
        case .timedOut(let job, let jobType, let daemon):
            var metadata = daemon.map(Self.metadata) ?? [:]
            metadata["kapsel.job"] = "\(job)"
            metadata["kapsel.jobType"] = "\(jobType)"
            logger.notice("job timed out", metadata: metadata)
        case .killedUnresponsive(let daemon, let job):
            logger.warning("daemon killed: it did not stop a cancelled job in time", metadata: Self.metadata(daemon).merging(["kapsel.job": "\(job)"]) { $1 })
        case .retried(let job, let jobType, let daemon):
            logger.notice("job retried after its daemon died", metadata: Self.metadata(daemon).merging(["kapsel.job": "\(job)", "kapsel.jobType": "\(jobType)"]) { $1 })
        case .started:
            break
        }
    }

    /// A stream of the pool's events from now on — after the latest ones already past,
    /// with `replaying` — finished when the pool stops; the newest `limit` wait for a slow
    /// reader, older ones are dropped.
    func events(limit: Int, replaying: Bool) -> AsyncStream<DaemonEvent> {
        let (stream, continuation) = AsyncStream<DaemonEvent>.makeStream(bufferingPolicy: .bufferingNewest(limit))
        let id = nextSubscription.wrappingAdd(1, ordering: .relaxed).oldValue
        let subscribed = feed.withLock { feed in
            // Under the feed's lock: no event comes between the replay and the subscription.
            if replaying { for event in feed.recent { continuation.yield(event) } }
            guard feed.subscribers != nil else { return false }
            feed.subscribers?[id] = continuation
            return true
        }
        guard subscribed else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.feed.withLock { _ = $0.subscribers?.removeValue(forKey: id) }
        }
        return stream
    }

    /// The latest events, oldest first.
    var recentEvents: [DaemonEvent] {
        feed.withLock { Array($0.recent) }
    }

    /// The pool stopped: every event stream finishes.
    func finishEvents() {
        let ended = feed.withLock { feed in
            defer { feed.subscribers = nil }
            return feed.subscribers.map { Array($0.values) } ?? []
        }
        for continuation in ended { continuation.finish() }
    }

    /// Keeps the event and hands it to every stream (events are rare: launches, deaths).
    private func publish(_ event: PoolEvent) {
        guard let published = DaemonEvent(event) else { return }
        feed.withLock { feed in
            feed.recent.append(published)
            if feed.recent.count > Self.recentLimit { feed.recent.removeFirst() }
            for listener in (feed.subscribers ?? [:]).values { listener.yield(published) }
        }
    }

    /// A line a daemon process printed (standard output or error).
    func daemonPrinted(_ line: String, slot: Int, instance: Int, pid: Int32) {
        logger?.info("\(line)", metadata: Self.metadata(slot: slot, instance: instance, pid: pid))
    }

    /// Whether lines daemons print are wanted (they are split and logged only then).
    var wantsDaemonOutput: Bool {
        guard let logger else { return false }
        return logger.logLevel <= .info
    }

    static func metadata(_ daemon: DaemonIdentity) -> Logger.Metadata {
        metadata(slot: daemon.index, instance: daemon.instance, pid: daemon.pid)
    }

    static func metadata(slot: Int, instance: Int, pid: Int32? = nil) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["kapsel.daemon": "\(slot)", "kapsel.instance": "\(instance)"]
        if let pid { metadata["kapsel.pid"] = "\(pid)" }
        return metadata
    }

    /// The last few lines of a daemon's output, for a log record.
    static func lastLines(of output: String, count: Int = 10) -> String {
        output.split(separator: "\n", omittingEmptySubsequences: false).suffix(count).joined(separator: "\n")
    }
}
