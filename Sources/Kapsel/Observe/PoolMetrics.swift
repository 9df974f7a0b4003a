import CoreMetrics

/// The swift-metrics figures of one pool, each with the dimension `pool` (the pool's
/// `DaemonOptions.name`, a profile's name in a `ControllerGroup`).
///
/// | Name | Kind | What |
/// |---|---|---|
/// | `kapsel_jobs_submitted_total` | counter | jobs submitted |
/// | `kapsel_jobs_succeeded_total` | counter | jobs that resolved with a value |
/// | `kapsel_jobs_failed_total` | counter, `code` | jobs that resolved with a `JobError`, by its code |
/// | `kapsel_daemon_crashes_total` | counter | daemons that died on their own |
/// | `kapsel_job_retries_total` | counter | jobs run again after their daemon died |
/// | `kapsel_daemon_replacements_total` | counter | daemons launched in place of one that ended |
/// | `kapsel_daemons_online` | gauge | daemons connected |
/// | `kapsel_jobs_waiting` | gauge | jobs waiting for a daemon |
/// | `kapsel_jobs_running` | gauge | jobs sent to daemons and not answered |
/// | `kapsel_shared_memory_lent_bytes` | gauge | pooled shared memory daemons hold |
/// | `kapsel_job_round_trip_seconds` | timer | submission to resolution |
/// | `kapsel_job_queue_wait_seconds` | timer | submission to the first daemon |
///
/// Gauges are sampled every `DaemonOptions.gaugeInterval` and when the pool stops.
final class PoolMetrics: Sendable {
    private let factory: any MetricsFactory
    private let dimensions: [(String, String)]
    private let submitted: Counter
    private let succeeded: Counter
    private let crashes: Counter
    private let retries: Counter
    private let replacements: Counter
    private let online: Gauge
    private let waiting: Gauge
    private let running: Gauge
    private let lentBytes: Gauge
    private let roundTrip: CoreMetrics.Timer
    private let queueWait: CoreMetrics.Timer

    /// The metrics of pool `name` in `factory` (nil: the bootstrapped `MetricsSystem`'s);
    /// nil when that is swift-metrics' no-op factory, so that nothing is measured for nobody.
    static func make(name: String, factory: (any MetricsFactory)?) -> PoolMetrics? {
        let factory = factory ?? MetricsSystem.factory
        if factory is NOOPMetricsHandler { return nil }
        return PoolMetrics(name: name, factory: factory)
    }

    private init(name: String, factory: any MetricsFactory) {
        self.factory = factory
        let dimensions = [("pool", name)]
        self.dimensions = dimensions
        submitted = Counter(label: "kapsel_jobs_submitted_total", dimensions: dimensions, factory: factory)
        succeeded = Counter(label: "kapsel_jobs_succeeded_total", dimensions: dimensions, factory: factory)
        crashes = Counter(label: "kapsel_daemon_crashes_total", dimensions: dimensions, factory: factory)
        retries = Counter(label: "kapsel_job_retries_total", dimensions: dimensions, factory: factory)
        replacements = Counter(label: "kapsel_daemon_replacements_total", dimensions: dimensions, factory: factory)
        online = Gauge(label: "kapsel_daemons_online", dimensions: dimensions, factory: factory)
        waiting = Gauge(label: "kapsel_jobs_waiting", dimensions: dimensions, factory: factory)
        running = Gauge(label: "kapsel_jobs_running", dimensions: dimensions, factory: factory)
        lentBytes = Gauge(label: "kapsel_shared_memory_lent_bytes", dimensions: dimensions, factory: factory)
        roundTrip = CoreMetrics.Timer(label: "kapsel_job_round_trip_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        queueWait = CoreMetrics.Timer(label: "kapsel_job_queue_wait_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
    }

    /// A job was submitted.
    func jobSubmitted() {
        submitted.increment()
    }

    /// A job submitted at `submittedAt` resolved with `error` (nil: a value).
    func jobResolved(failure error: JobError?, submittedAt: ContinuousClock.Instant) {
        roundTrip.recordElapsed(since: submittedAt)
        if let error {
            Counter(label: "kapsel_jobs_failed_total", dimensions: dimensions + [("code", Self.label(error.code))], factory: factory).increment()
        } else {
            succeeded.increment()
        }
    }

    /// Counts what an event counts.
    func count(_ event: PoolEvent) {
        switch event {
        case .crashed: crashes.increment()
        case .retried: retries.increment()
        case .replaced: replacements.increment()
        case .started(let resolver):
            if let submittedAt = resolver.submittedAt { queueWait.recordElapsed(since: submittedAt) }
        default: break
        }
    }

    /// Sets the gauges.
    func sample(_ figures: PoolFigures) {
        online.record(figures.online)
        waiting.record(figures.waiting)
        running.record(figures.running)
        lentBytes.record(figures.lentBytes)
    }

    /// A code as a metric label: `daemon crashed` becomes `daemon_crashed`.
    static func label(_ code: JobError.Code) -> String {
        code.description.replacing(" ", with: "_")
    }
}

/// What a pool's gauges show, read from its dispatcher.
struct PoolFigures: Equatable {
    var online: Int
    var waiting: Int
    var running: Int
    var lentBytes: Int
}

extension CoreMetrics.Timer {
    /// Records the time from `start` to now.
    func recordElapsed(since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
