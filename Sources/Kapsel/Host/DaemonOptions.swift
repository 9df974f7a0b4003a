import CoreMetrics
import KapselWire
import Logging

/// How a pool of daemons is started and run. Every field has a default.
///
/// ```swift
/// var options = DaemonOptions()
/// options.dispatch = .roundRobin
/// options.executable = .path("/usr/local/bin/my-worker")
/// let daemons = try await Daemons(4, options: options)
/// ```
public struct DaemonOptions: Sendable {
    /// Which program the daemons run.
    public enum Executable: Sendable, Hashable {
        /// This process's own executable, re-launched in daemon mode; its `main` must
        /// call `Kapsel.bootstrap(jobs:)` first.
        case currentProcess
        /// Another executable (which calls `Kapsel.bootstrap(jobs:)`), with arguments.
        case path(String, arguments: [String] = [])
    }

    /// How jobs are handed to daemons.
    public enum Dispatch: Sendable, Hashable {
        /// A FIFO queue in the host; each job goes to the first idle daemon, so no job
        /// ever waits behind a long one while another daemon is free.
        case dispatcher
        /// No queue in the host: each job is sent at once to the next daemon in turn and
        /// waits there (lowest overhead, but a job may wait behind a slow one).
        case roundRobin
    }

    /// How daemon processes are started.
    public enum Launch: Sendable {
        /// As children of the host, on this machine.
        case local
        /// Through a `Launcher`'s shell command (run under `/bin/sh -c` as a child of the
        /// host, with the daemon's settings in its environment); its exit ends the
        /// daemon's slot, which is relaunched like a crashed daemon.
        case custom(any Launcher)
        /// By you: `Daemons.launchCommands()` gives the command for each daemon the pool
        /// waits for, to run wherever you like. The pool starts without waiting; jobs
        /// queue until daemons join. When a daemon leaves (its connection closes or falls
        /// silent), its slot waits for a daemon started with the same command — or for
        /// the same daemon, back after a cut (`daemonsWaitForHost`).
        case manual
        /// In the host itself, for debugging and for unit tests of your jobs: the same API,
        /// results and errors, without processes. The daemons run the job and actor types
        /// given to `Kapsel.bootstrap(jobs:actors:)`, which must have been called. **Unsafe**:
        /// nothing is isolated, so a crash in a job is a crash of your program, and a job
        /// that ignores cancellation keeps running after its time limit. They share the
        /// process's `DaemonStorage`; shared memory is copied (no descriptors are passed).
        case inProcess

        /// Through a command template (`CommandTemplate`): `{command}` becomes the
        /// daemon's command line, e.g. `srun --mem 512 -n 1 {command}`.
        public static func command(_ template: String) -> Launch {
            .custom(CommandTemplate(template))
        }

        /// On another machine over SSH (`SSHLaunch`).
        public static func ssh(_ settings: SSHLaunch) -> Launch {
            .custom(settings)
        }

        /// What launches the daemons, for errors: `local`, `manual`, or the launcher's name.
        var name: String {
            switch self {
            case .local: "local"
            case .manual: "manual"
            case .inProcess: "in-process"
            case .custom(let launcher): launcher.launcherName
            }
        }

        var isLocal: Bool {
            if case .local = self { true } else { false }
        }

        var isManual: Bool {
            if case .manual = self { true } else { false }
        }

        /// Whether each daemon is a process the host launches and watches.
        var launchesProcesses: Bool {
            switch self {
            case .local, .custom: true
            case .manual, .inProcess: false
            }
        }
    }

    /// Which program the daemons run.
    public var executable: Executable = .currentProcess
    /// How daemon processes are started.
    public var launch: Launch = .local
    /// How the pool works with daemons that connect over the network: where the host
    /// listens, its TLS, heartbeats, and daemons that wait for a host that went away.
    public var remote = RemoteSettings()
    /// When daemons retire by themselves (after so many jobs, so much time, or so long
    /// idle) and are replaced; off by default.
    public var lifetime = DaemonLifetime()
    /// How jobs are handed to daemons.
    public var dispatch: Dispatch = .dispatcher
    /// How long a cancelled or timed-out job has to stop cooperatively before its
    /// daemon is killed and replaced.
    public var cancellationGrace: Duration = .milliseconds(50)
    /// How long `Daemons(...)` waits for every daemon to connect.
    public var startupTimeout: Duration = .seconds(30)
    /// How long `stop()` waits for daemons to exit before killing them.
    public var shutdownGrace: Duration = .seconds(2)
    /// After this many failed starts in a row a daemon slot is given up.
    public var maxConsecutiveStartFailures: Int = 3
    /// Copy what daemons print to the host's standard error. Either way the last
    /// 8 KiB of a daemon's output are kept and shown when it crashes.
    public var forwardOutput: Bool = false
    /// Extra environment variables for the daemons (they inherit the host's otherwise).
    public var environment: [String: String] = [:]
    /// How long a thread reading a local daemon's connection (in the host, and in the
    /// daemon) stays awake for the next message while the other side has been answering
    /// within it, instead of sleeping: waking a sleeping thread costs more than a round
    /// trip's system calls, so a burst of short jobs runs up to twice as fast. It costs
    /// processor time only during such bursts (the thread yields to any other that wants
    /// the processor); zero turns it off, for machines where every cycle belongs to jobs.
    public var busyPoll: Duration = BusyWait.defaultBusyPoll
    /// Limits on frames, both ways (the daemons get `maxFrameLength` too).
    public var limits: WireLimits = WireLimits()
    /// Plain arrays of fixed-width numbers (`[Double]`, `[Int32]`, `[UInt8]`, `Data`, ...)
    /// of at least this many bytes, in jobs and results, are copied once into shared
    /// memory instead of being serialized. `SharedArray`s always travel as shared memory.
    public var largeArrayThreshold: Int = 1 << 20
    /// The time limit of calls to distributed actors (none by default); a task can set
    /// its own with `KapselActorSystem.$callTimeout`. A call past its limit fails with
    /// `.timedOut` and is cancelled in its daemon, which is not killed: it hosts other actors.
    public var actorCallTimeout: Duration?
    /// How often the host looks for actor proxies it no longer holds, to release their
    /// actors in the daemons.
    public var actorReleaseInterval: Duration = .milliseconds(100)
    /// The pool's name in its log records (`kapsel.pool`) and metrics (the `pool`
    /// dimension); a `ControllerGroup` names each pool after its profile.
    public var name: String = "default"
    /// Where the pool logs what happens to its daemons: launches and daemons online at
    /// `.debug`; crashes (with the signal and last output lines), lost connections,
    /// refused peers and failed launches at `.warning`; time-outs and retries at
    /// `.notice`; and each line a daemon prints at `.info`, with `kapsel.daemon`,
    /// `kapsel.instance` and `kapsel.pid` in the metadata. Nil (the default): nothing.
    public var logger: Logger?
    /// Where the pool's metrics go (counters, gauges and timers named `kapsel_...`, with
    /// the dimension `pool`): nil for the factory `MetricsSystem` was bootstrapped with;
    /// with none bootstrapped, nothing is measured.
    public var metricsFactory: (any MetricsFactory)?
    /// How often the gauges (daemons online, jobs waiting and running, shared memory
    /// lent) are sampled; they are sampled again when the pool stops.
    public var gaugeInterval: Duration = .seconds(1)

    /// Default options.
    public init() {}
}

/// How a pool works with daemons that connect over the network (`DaemonOptions.remote`).
/// Every field has a default: with none set, the host listens on a private Unix socket.
///
/// ```swift
/// var options = DaemonOptions()
/// options.remote.listen = "tls+tcp://0.0.0.0:5555"
/// options.remote.heartbeat = HeartbeatSettings(interval: .seconds(2), timeout: .seconds(10))
/// ```
public struct RemoteSettings: Sendable {
    /// Where the host listens for daemons, as a URL (`HostAddress`): nil for a private
    /// Unix socket; `tcp://127.0.0.1:0` or `tls+tcp://[::]:5555` for daemons that
    /// connect over the network. Port 0 picks a free port (`Daemons.url` tells which).
    public var listen: String?
    /// The certificate of a `tls+tcp://` host: generated and pinned by default.
    public var tls: HostCertificate = .generated
    /// With a certificate of your own: the CA certificate (a PEM file path on the
    /// daemons' machines) daemons verify the host's chain against.
    public var tlsCertificateAuthority: String?
    /// Allow plain `tcp://` on an address other than loopback. Off by default: without
    /// TLS, jobs and results cross the network unencrypted.
    public var allowPlainTCP: Bool = false
    /// Heartbeats on TCP connections: a daemon silent for `timeout` (a killed machine, a
    /// cut link) is dropped, and what it held resolves as `.connectionLost` (or is
    /// retried, with `retries:`); a daemon whose host falls silent exits.
    public var heartbeat = HeartbeatSettings()
    /// What a daemon does when it loses its host (its connection closes, breaks or falls
    /// silent): exit at once (nil, the default), or keep trying to reconnect, once a
    /// second, for up to this long — for daemons deployed by hand (`.manual`) over a link
    /// that may drop: such a slot keeps its launch command, so its daemon is welcomed
    /// back. A daemon the host launched as its own child always ends with the host.
    public var daemonsWaitForHost: Duration?

    /// Default settings: a private Unix socket.
    public init() {}
}
