import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// A host that keeps its daemons busy — local children, daemons over TCP started through
/// a command, daemons started over SSH — until someone kills it: what the host-death test
/// and W12 kill with SIGKILL to see every daemon go.
///
/// It prints one line per daemon, `<kind> <pid>` (`local`, `tcp`, `ssh`; the daemon's
/// own pid, as the daemon reports it), then `ready`, and works for ever: jobs holding
/// 1 MiB of shared memory each, two per daemon at all times.
public enum HostUnderFire {
    /// Which daemons the host runs.
    public struct Settings: Sendable {
        /// Local daemons, children of the host.
        public var local = 2
        /// Daemons over TCP on loopback, started through a shell command (not the host's
        /// children: they notice its death through their connection).
        public var tcp = 1
        /// Daemons started over SSH, if set.
        public var ssh: SSHLaunch?
        /// How many daemons over SSH.
        public var sshCount = 1
        /// The daemons' executable (it must know `Churn` and `ReportPID`).
        public var executable = DaemonOptions.Executable.currentProcess
        /// Heartbeats of the TCP and SSH daemons.
        public var heartbeat = HeartbeatSettings()

        /// Two local daemons and one over TCP.
        public init() {}
    }

    /// Starts the pools, prints their daemons, keeps them working; never returns.
    public static func run(_ settings: Settings) async throws -> Never {
        var pools: [(kind: String, daemons: Daemons)] = []
        var local = DaemonOptions()
        local.executable = settings.executable
        if settings.local > 0 { pools.append(("local", try await Daemons(settings.local, options: local))) }
        var tcp = local
        tcp.remote.listen = "tcp://127.0.0.1:0"
        tcp.remote.heartbeat = settings.heartbeat
        tcp.launch = .command("{command}")
        if settings.tcp > 0 { pools.append(("tcp", try await Daemons(settings.tcp, options: tcp))) }
        if let ssh = settings.ssh {
            var options = tcp
            options.launch = .ssh(ssh)
            pools.append(("ssh", try await Daemons(settings.sshCount, options: options)))
        }
        for (kind, daemons) in pools {
            for result in await daemons.everywhere(ReportPID()) { print("\(kind) \((try? result.get()) ?? -1)") }
        }
        print("ready")
        fflush(nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (_, daemons) in pools {
                for _ in 0..<2 * daemons.count {
                    group.addTask {
                        let data = try SharedArray<Double>(repeating: 1, count: 1 << 17)
                        while true { _ = await daemons.submit(Churn(values: data)).result }
                    }
                }
            }
            try await group.waitForAll()
        }
        fatalError("unreachable: the work never ends")
    }
}

/// The jobs and actors of the stress runs, for `Kapsel.bootstrap`.
public enum StressJobs {
    /// The jobs.
    public static let all: [any Job.Type] = [StormJob.self, Churn.self, ReportPID.self]
    /// The actors.
    public static let actors: [any KapselActor.Type] = [StormActor.self]
}

/// Sums its values after 5 ms: work that holds shared memory in its daemon.
public struct Churn: Job {
    /// The values, in shared memory.
    public var values: SharedArray<Double>

    /// A job over `values`.
    public init(values: SharedArray<Double>) {
        self.values = values
    }

    public func run() async throws -> Double {
        try await Task.sleep(for: .milliseconds(5))
        return values.withUnsafeBufferPointer { $0.reduce(0, +) }
    }
}

/// The pid of the daemon it runs in.
public struct ReportPID: Job {
    /// The job.
    public init() {}

    public func run() async throws -> Int32 { getpid() }
}
