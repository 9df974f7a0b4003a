/// How a pool sizes itself — the controller's rules, apart from the dispatcher's state so
/// they can be read and tested on their own.
///
/// A pool has a slot for each of `workers.upperBound` workers; `workers.lowerBound` of
/// them are started at once and kept, the others are parked until work waits for them.
/// With jobs waiting it starts one worker per waiting job that no idle or starting worker
/// will take — launches under way count, so a slow launcher is not flooded — up to the
/// maximum. A worker idle for `idleTime` retires, down to the minimum. A launch that has
/// not connected after `launchTimeout` is stopped and counts as a failed start. A job whose
/// worker dies under it runs again on another worker, up to `crashesMax` times.
///
/// This is mirai's and crew's model: demand is the waiting work, supply the workers
/// launching and connected, and the launches are the difference.
struct ScalingPolicy: Sendable, Hashable {
    /// How many workers the pool keeps at least, and may have at most.
    let workers: ClosedRange<Int>
    /// How long a worker may sit idle before it retires (nil: never, for a pool that does not shrink).
    let idleTime: Duration?
    /// How long a launch may take to connect (nil: no limit).
    let launchTimeout: Duration?
    /// How many times a job runs again after its worker died under it, unless the job says.
    let crashesMax: Int

    /// A pool of exactly `count` workers, as `Daemons(count)` makes: no scaling.
    static func fixed(_ count: Int, crashesMax: Int = 0, launchTimeout: Duration? = nil) -> ScalingPolicy {
        ScalingPolicy(workers: count...count, idleTime: nil, launchTimeout: launchTimeout, crashesMax: crashesMax)
    }

    /// Whether the pool changes size by itself.
    var isElastic: Bool { workers.lowerBound < workers.upperBound }

    /// How many parked workers to start for `waiting` jobs when `ready` workers (starting,
    /// or online and idle) will take jobs anyway and `parked` are parked.
    func launches(waiting: Int, ready: Int, parked: Int) -> Int {
        max(0, min(waiting - ready, parked))
    }

    /// Whether an idle worker may retire when `staying` workers are launching, or online
    /// and not retiring (it among them).
    func mayRetireIdle(staying: Int) -> Bool {
        idleTime != nil && staying > workers.lowerBound
    }

    /// How many times a job runs again after a crash: what it asked for, or the pool's limit.
    func retries(asked: Int?) -> Int {
        max(0, asked ?? crashesMax)
    }
}
