/// A pool that sizes itself — a controller, in mirai's and crew's words: it starts
/// workers when jobs wait, lets idle ones go, replaces crashed ones and runs their jobs
/// again up to a limit.
///
/// ```swift
/// var cluster = ControllerOptions(workers: 0...50, idleTime: .seconds(30), crashesMax: 5)
/// cluster.launch = .command("srun --mem 2G -n 1 {command}")
/// try await withDaemons(controller: cluster) { daemons in
///     print(try await daemons.submit(Square(x: 4)).value)
/// }
/// ```
///
/// With jobs waiting and fewer than `workers.upperBound` workers launched, the pool
/// launches one more per waiting job that no idle or launching worker will take
/// (launches under way count, so a slow launcher is not flooded). A worker idle for
/// `idleTime` retires, down to `workers.lowerBound`. A launch that does not connect
/// within `launchTimeout` is stopped and counts as a failed start; after
/// `daemons.maxConsecutiveStartFailures` of them in a row for every slot, the waiting
/// jobs resolve as `.launchFailed` — with the launcher and what it printed — and the next
/// job gives the launcher another try. A job whose worker died under it runs again, up
/// to `crashesMax` times, then resolves as `.crashed` with the count.
public struct ControllerOptions: Sendable {
    /// How many workers the pool keeps at least, and may run at most.
    public var workers: ClosedRange<Int>
    /// How long a worker may sit idle before it retires (down to the minimum); nil:
    /// workers never retire for want of work.
    public var idleTime: Duration?
    /// How many times a job runs again after its worker died under it (a job's own
    /// `retries:` wins).
    public var crashesMax: Int
    /// How long a launch may take to connect before it is stopped and counts as failed;
    /// nil: no limit. Make it longer than a busy cluster's queue wait.
    public var launchTimeout: Duration?
    /// Everything else about the workers: their executable, environment, lifetimes
    /// (`wallTime` and `maxJobs` recycle workers as in any pool), limits.
    public var daemons: DaemonOptions

    /// How the workers are started (`daemons.launch`): `.local` by default, or
    /// `.command(...)`, `.ssh(...)`, `.slurm(...)` (in KapselSlurm), a `Launcher` of your own.
    public var launch: DaemonOptions.Launch {
        get { daemons.launch }
        set { daemons.launch = newValue }
    }

    /// A pool of `workers` started by `launch`.
    public init(
        workers: ClosedRange<Int>, idleTime: Duration? = .seconds(30), crashesMax: Int = 0, launchTimeout: Duration? = .seconds(120),
        launch: DaemonOptions.Launch = .local, daemons: DaemonOptions = DaemonOptions()
    ) {
        precondition(workers.upperBound > 0, "a pool may run at least one worker")
        precondition(workers.lowerBound >= 0, "a pool cannot keep fewer than no workers")
        precondition(crashesMax >= 0, "crashesMax counts retries: 0 or more")
        self.workers = workers
        self.idleTime = idleTime
        self.crashesMax = crashesMax
        self.launchTimeout = launchTimeout
        self.daemons = daemons
        self.daemons.launch = launch
    }

    /// A pool of `workers` on this machine.
    public static func local(
        workers: ClosedRange<Int>, idleTime: Duration? = .seconds(30), crashesMax: Int = 0, daemons: DaemonOptions = DaemonOptions()
    ) -> ControllerOptions {
        ControllerOptions(workers: workers, idleTime: idleTime, crashesMax: crashesMax, daemons: daemons)
    }

    /// The rules the dispatcher sizes the pool by.
    var scaling: ScalingPolicy {
        ScalingPolicy(workers: workers, idleTime: idleTime, launchTimeout: launchTimeout, crashesMax: crashesMax)
    }
}
