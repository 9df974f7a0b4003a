import KapselSharedMemory
import KapselWire
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A pool of local daemon processes that run jobs, isolated from the host: whatever a
/// job does — crash, hang, leak — the host stays up and the job resolves.
///
/// ```swift
/// try await withDaemons(2) { daemons in
///     let handle = daemons.submit(Simulate(mean: 2, sd: 5, n: 1_000_000))
///     print(try await handle.value)
///     print(daemons.status())
/// }
/// ```
///
/// Prefer `withDaemons`, which always stops the daemons; a `Daemons` made directly
/// must be stopped with `stop()`.
public final class Daemons: Sendable {
    /// How many daemons the pool runs: exactly, or at most for a pool that sizes itself.
    public let count: Int
    /// The pool's name (`DaemonOptions.name`; a profile's name in a `ControllerGroup`).
    public var name: String { options.name }
    /// The address daemons connect to.
    public let url: String
    /// What a daemon must trust to join a `tls+tcp://` host (nil otherwise): a daemon
    /// started by hand needs it in `DaemonConfiguration.tlsTrust` (or as `KAPSEL_TLS_PIN`
    /// / `KAPSEL_TLS_CA` in its environment).
    public let tlsTrust: DaemonTLSTrust?
    let dispatcher: Dispatcher
    /// The distributed actor system of this pool: the host side of the actors it spawns.
    public let actorSystem: KapselActorSystem
    private let listener: HostListener
    private let launcher: ProcessLauncher
    let options: DaemonOptions
    private let releaseSweep: RepeatedTask
    /// Samples the gauges, when the pool has metrics.
    private let gaugeSampler: RepeatedTask?
    /// The maps under way on this pool.
    let maps = RunningMaps()

    /// Starts `count` daemons and waits until every one is connected.
    ///
    /// Throws `DaemonsError` when they cannot start (the error includes what a failing
    /// daemon printed) or do not connect within `options.startupTimeout`.
    public convenience init(_ count: Int, options: DaemonOptions = DaemonOptions()) async throws {
        precondition(count > 0, "a pool needs at least one daemon")
        try await self.init(slots: count, scaling: .fixed(count), options: options)
    }

    /// Starts a pool that sizes itself (`ControllerOptions`): its minimum of workers
    /// now — waiting until they are connected, as `init(_:options:)` does — and more as
    /// jobs wait.
    public convenience init(controller: ControllerOptions) async throws {
        try await self.init(slots: controller.workers.upperBound, scaling: controller.scaling, options: controller.daemons)
    }

    private init(slots count: Int, scaling: ScalingPolicy, options: DaemonOptions) async throws {
        Kapsel.refuseToNestInUnbootstrappedDaemon()
        let executable: String
        let arguments: [String]
        switch options.executable {
        case .currentProcess:
            guard let path = ProcessInspection.currentExecutable() else { throw DaemonsError("cannot find this process's executable in /proc/self/exe") }
            executable = path
            arguments = []
        case .path(let path, let extra):
            guard access(path, X_OK) == 0 else { throw DaemonsError("the daemon executable \(path) does not exist or is not executable") }
            executable = path
            arguments = extra
        }

        let requested = try options.remote.listen.map { url throws(DaemonsError) in try HostAddress(parsing: url) }
        if let requested, requested.transport == .tcp, !requested.isLocalOnly, !options.remote.allowPlainTCP {
            throw DaemonsError("plain TCP on \(requested) would send jobs unencrypted over the network: use tls+tcp://, or set DaemonOptions.remote.allowPlainTCP")
        }
        let tls = try requested?.transport == .tls ? HostTLS.make(options.remote.tls, authority: options.remote.tlsCertificateAuthority) : nil
        let directory = requested == nil ? try HostListener.makePrivateDirectory() : nil
        let address = requested ?? HostAddress(transport: .unix, host: "\(directory!)/host.sock", port: 0)
        let secret = HostSecret.random()
        let group = MultiThreadedEventLoopGroup.singleton
        let observer = PoolObserver(name: options.name, logger: options.logger, metrics: PoolMetrics.make(name: options.name, factory: options.metricsFactory))
        let state = DispatcherState(
            slotCount: count, mode: options.dispatch == .dispatcher ? .dispatcher : .roundRobin,
            cancellationGrace: options.cancellationGrace, maxStartFailures: options.maxConsecutiveStartFailures,
            launchesProcesses: options.launch.launchesProcesses, scaling: scaling, launcherDescription: options.launch.name,
            reportsStarts: observer.metrics != nil, makeToken: { HostSecret(bytes: Array(randomNonce().prefix(16))).hex }
        )
        let dispatcher = Dispatcher(state: state, timerLoop: group.next(), observer: observer)
        let listener: HostListener
        do {
            listener = try await HostListener.bind(address, directory: directory, tls: tls?.context, group: group, limits: options.limits) {
                HostConnectionHandler(
                    dispatcher: dispatcher, secret: secret, limits: options.limits, heartbeat: address.transport == .unix ? nil : options.remote.heartbeat,
                    isLocal: address.transport == .unix, busyPoll: options.busyPoll
                )
            }
        } catch {
            if let directory { rmdir(directory) }
            throw DaemonsError("cannot listen on \(address): \(error)")
        }
        let url = listener.url
        let launcher = ProcessLauncher(
            executable: executable, arguments: arguments, launch: options.launch, extraEnvironment: options.environment, url: listener.address,
            secret: secret, tlsTrust: tls?.daemonTrust, heartbeat: address.transport == .unix ? nil : options.remote.heartbeat,
            lifetime: options.lifetime, waitForHost: options.remote.daemonsWaitForHost, forwardOutput: options.forwardOutput,
            inlineLimit: options.largeArrayThreshold, maxFrameLength: options.limits.maxFrameLength, busyPoll: options.busyPoll, observer: observer
        )
        let hostActors = HostActors(dispatcher: dispatcher, defaultTimeout: options.actorCallTimeout)
        self.count = count
        self.url = url
        self.tlsTrust = tls?.daemonTrust
        self.dispatcher = dispatcher
        self.actorSystem = KapselActorSystem(role: .host(hostActors), inlineLimit: options.largeArrayThreshold)
        self.listener = listener
        self.launcher = launcher
        self.options = options
        let interval = TimeAmount(options.actorReleaseInterval)
        self.releaseSweep = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let releases = hostActors.sweep()
            if !releases.isEmpty { dispatcher.perform { $0.releaseActors(releases) } }
        }
        let gaugeInterval = TimeAmount(options.gaugeInterval)
        self.gaugeSampler = observer.metrics.map { metrics in
            group.next().scheduleRepeatedTask(initialDelay: gaugeInterval, delay: gaugeInterval) { _ in metrics.sample(dispatcher.figures()) }
        }

        if case .inProcess = options.launch {
            guard let types = Kapsel.bootstrapped.withLock({ $0 }) else {
                await stop()
                throw DaemonsError("in-process daemons run the jobs given to Kapsel.bootstrap(jobs:actors:): call it first")
            }
            dispatcher.start(launching: InProcessLauncher(
                url: listener.address, secret: secret, limits: options.limits, inlineLimit: options.largeArrayThreshold, lifetime: options.lifetime,
                busyPoll: options.busyPoll, types: types
            ))
        } else {
            dispatcher.start(launching: launcher)
        }
        // Daemons deployed by hand join when someone starts them: nothing to wait for.
        guard !options.launch.isManual else { return }
        do {
            try await dispatcher.waitUntilReady(limit: options.startupTimeout)
        } catch {
            await stop()
            throw error
        }
    }

    /// Submits a job and returns its handle at once; the job runs on the first idle
    /// daemon (or the next in turn, in round-robin mode).
    ///
    /// - Parameters:
    ///   - job: the job; its type must be listed in the daemons' `Kapsel.bootstrap(jobs:)`.
    ///   - timeout: the longest the job may run on a daemon (time spent waiting for a
    ///     daemon does not count, except in round-robin mode where the job waits in
    ///     its daemon). When it passes, the handle resolves as `.timedOut`, the job is
    ///     cancelled, and its daemon is replaced if it does not stop within
    ///     `DaemonOptions.cancellationGrace`.
    ///   - retries: how many times to re-run the job if its daemon dies while running it
    ///     (nil: the pool's `crashesMax`, 0 for a pool made with a count).
    public func submit<J: Job>(_ job: J, timeout: Duration? = nil, retries: Int? = nil) -> JobHandle<J.Output> {
        let id = dispatcher.makeJobID()
        let jobType = J.jobTypeName
        let handle = JobHandle<J.Output>(id: id, jobType: jobType, actorSystem: actorSystem, metrics: dispatcher.observer.metrics) { [dispatcher] id in
            dispatcher.perform { $0.cancel(job: id) }
        }
        let envelope: Envelope
        do {
            envelope = try encode(job)
        } catch {
            handle.resolve(.failure(JobError(.jobEncodingFailed, "the job does not encode: \(error)", jobType: jobType)))
            return handle
        }
        dispatcher.perform {
            $0.submit(id: id, jobType: jobType, envelope: envelope, resolver: handle, timeout: timeout, retries: retries)
        }
        return handle
    }

    /// Runs `job` on every daemon, first before any other waiting work, and again on
    /// every daemon that starts later (a replacement after a crash included). Use it
    /// for setup whose state (in `DaemonStorage`) later jobs rely on.
    ///
    /// Returns the result on each daemon running now, in daemon order; a worker a pool that
    /// scales starts later runs it first too.
    @discardableResult
    public func everywhere<J: Job>(_ job: J) async -> [Result<J.Output, JobError>] {
        let envelope: Envelope
        do {
            envelope = try encode(job)
        } catch {
            return [.failure(JobError(.jobEncodingFailed, "the job does not encode: \(error)", jobType: J.jobTypeName))]
        }
        var handles: [JobHandle<J.Output>] = []
        dispatcher.perform { state in
            state.everywhere(jobType: J.jobTypeName, envelope: envelope) { _ in
                let handle = JobHandle<J.Output>(id: dispatcher.makeJobID(), jobType: J.jobTypeName, actorSystem: actorSystem, canceller: nil)
                handles.append(handle)
                return handle
            }
        }
        var results: [Result<J.Output, JobError>] = []
        for handle in handles { results.append(await handle.result) }
        return results
    }

    /// `value` as it goes to a daemon: its bytes, and the shared memory it refers to
    /// (large arrays copied once into it).
    func encode<T: Encodable>(_ value: T) throws -> Envelope {
        try Envelope(encoding: value, inlineLimit: options.largeArrayThreshold, actorSystem: actorSystem)
    }

    /// Replaces daemon `index` by a fresh process and waits (up to `options.startupTimeout`)
    /// until the new one is online: the old one gets no more work, finishes what it
    /// holds and exits. What lives in it — its actors, an embedded interpreter — is gone.
    public func restart(daemon index: Int) async throws {
        precondition(index >= 0 && index < count, "no daemon \(index) in a pool of \(count)")
        var old = 0
        dispatcher.perform { state in
            let (instance, actions) = state.restart(slot: index)
            old = instance
            return actions
        }
        let clock = ContinuousClock()
        let deadline = clock.now + options.startupTimeout
        while clock.now < deadline {
            let slot = status().daemons[index]
            if slot.online && slot.instance > old { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw DaemonsError("daemon \(index) did not come back within \(options.startupTimeout)")
    }

    /// How many times a job's handle was resolved again after it had resolved: the
    /// dispatcher's own check that every job resolves exactly once (0, always).
    package var repeatedResolutions: Int {
        dispatcher.repeatedResolutions.load(ordering: .relaxed)
    }

    /// A snapshot: connections, waiting jobs, and per daemon whether it is online,
    /// its instance, pid, and how many jobs it was assigned, completed and crashed on.
    public func status() -> DaemonsStatus {
        dispatcher.inspect { $0.status(url: url) }
    }
    /// What happens to the daemons — launches, crashes with their signal and last output
    /// lines, retries, replacements, refused peers — from now on, or from the latest 200
    /// already past with `replaying`, as a stream that ends when the pool stops. A reader
    /// that falls behind loses the oldest beyond `limit`.
    ///
    /// ```swift
    /// for await event in daemons.events() where event.kind == .crashed {
    ///     print(event.daemon!, event.summary)
    /// }
    /// ```
    public func events(replaying: Bool = false, limit: Int = 1000) -> AsyncStream<DaemonEvent> {
        dispatcher.observer.events(limit: limit, replaying: replaying)
    }

    /// The latest events (up to 200), oldest first.
    public var recentEvents: [DaemonEvent] {
        dispatcher.observer.recentEvents
    }

    /// The bytes of pooled shared memory (`SlotPool` slots) the daemons hold now.
    public var sharedMemoryLent: Int {
        dispatcher.figures().lentBytes
    }

    /// How far each `map` under way on this pool has come, oldest first.
    public var runningMaps: [MapProgress] {
        maps.progress
    }

    /// The shell commands that start the daemons this pool is waiting for, one per slot
    /// without a daemon, ready to run on another machine (`DaemonOptions.Launch.manual`):
    /// the daemon's settings as variable assignments, then `executable` (this pool's
    /// daemon executable unless given: the path on the other machine).
    ///
    /// ```swift
    /// for command in daemons.launchCommands(executable: "/opt/app/bin/worker") { print(command) }
    /// ```
    ///
    /// A command holds the host's secret: hand it over like a password. A slot has one
    /// command for the life of the pool: when its daemon leaves, the slot waits for a
    /// daemon started with the same command (one at a time).
    public func launchCommands(executable: String? = nil) -> [String] {
        dispatcher.inspect { $0.slots.waitingTokens }.map { launcher.manualCommand(slot: $0.slot, token: $0.token, executable: executable) }
    }


    /// Shuts the pool down gracefully, as a server does on SIGTERM: it takes no more jobs
    /// (`submit` resolves with `.shuttingDown` at once), lets the jobs already submitted —
    /// running or waiting — finish for up to `grace`, then stops the daemons as `stop()`
    /// does (what is still unresolved resolves with `.stopped`).
    public func shutdownGracefully(grace: Duration) async {
        await dispatcher.drain(grace: grace)
        await stop()
    }

    /// Stops the daemons. Unresolved jobs resolve with `.stopped`; daemons are asked to
    /// exit and killed if they have not after `DaemonOptions.shutdownGrace`. Returns
    /// when every daemon process is gone. Calling it again does nothing more.
    public func stop() async {
        releaseSweep.cancel()
        gaugeSampler?.cancel()
        await dispatcher.stop(grace: options.shutdownGrace)
        await listener.close()
        dispatcher.observer.metrics?.sample(dispatcher.figures())
        dispatcher.observer.finishEvents()
    }
}

/// Runs `body` with a pool that sizes itself (`ControllerOptions`) and stops its
/// workers when it returns or throws.
public func withDaemons<Result>(
    controller: ControllerOptions,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (Daemons) async throws -> Result
) async throws -> Result {
    try await withPool(try await Daemons(controller: controller), body)
}

/// Runs `body` with `daemons`, which it stops when `body` returns or throws.
func withPool<Pool: Stoppable, Result>(
    _ pool: Pool, isolation: isolated (any Actor)? = #isolation, _ body: (Pool) async throws -> Result
) async throws -> Result {
    do {
        let result = try await body(pool)
        await pool.stop()
        return result
    } catch {
        await pool.stop()
        throw error
    }
}

/// Something `withPool` stops at the end of its scope.
protocol Stoppable: Sendable {
    /// Stops it; returns once everything it started is gone.
    func stop() async
}

extension Daemons: Stoppable {}

/// Runs `body` with `count` daemons and stops them when it returns or throws.
///
/// ```swift
/// let total = try await withDaemons(4) { daemons in
///     let handles = (1...100).map { daemons.submit(Square(x: $0)) }
///     var sum = 0
///     for handle in handles { sum += try await handle.value }
///     return sum
/// }
/// ```
public func withDaemons<Result>(
    _ count: Int,
    options: DaemonOptions = DaemonOptions(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (Daemons) async throws -> Result
) async throws -> Result {
    try await withPool(try await Daemons(count, options: options), body)
}
