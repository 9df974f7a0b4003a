import KapselWire

#if canImport(Glibc)
import Glibc
#endif

/// What a daemon needs to find and join its host.
public struct DaemonConfiguration: Sendable {
    /// The host's address: `unix:///path/to/socket`, `tcp://HOST:PORT` or `tls+tcp://HOST:PORT`.
    public var url: String
    /// How to check the host's certificate, for a `tls+tcp://` host.
    public var tlsTrust: DaemonTLSTrust?
    /// Heartbeats with the host (over TCP): the daemon exits when the host falls silent.
    public var heartbeat: HeartbeatSettings?
    /// When the daemon retires by itself.
    public var lifetime: DaemonLifetime
    /// How long the daemon keeps trying to reconnect after losing its host (nil: it
    /// exits at once).
    public var waitForHost: Duration?
    /// The per-host secret.
    public var secret: HostSecret
    /// The launch token the host issued (empty for a daemon the host did not launch).
    public var token: String
    /// The host's pid when the host launched this daemon as its child.
    public var hostPID: Int32?
    /// Limits on frames from the host.
    public var limits: WireLimits
    /// How long the thread reading a local host's connection stays awake for its next
    /// message (`DaemonOptions.busyPoll`).
    public var busyPoll: Duration
    /// The inherited descriptor of the channel for shared memory, when the host launched
    /// this daemon on the same machine.
    public var descriptorChannel: Int32?
    /// Plain arrays of at least this many bytes in results travel as shared memory.
    public var inlineLimit: Int
    /// The resource manager's job this daemon runs in (`slurm 1234`), told to the host
    /// for its status; found in the environment a resource manager sets.
    public var batchJob: String?

    /// Creates a configuration.
    public init(
        url: String, secret: HostSecret, token: String = "", hostPID: Int32? = nil, limits: WireLimits = WireLimits(),
        descriptorChannel: Int32? = nil, inlineLimit: Int = 1 << 20, tlsTrust: DaemonTLSTrust? = nil, heartbeat: HeartbeatSettings? = nil,
        lifetime: DaemonLifetime = DaemonLifetime(), waitForHost: Duration? = nil, busyPoll: Duration = .microseconds(100),
        batchJob: String? = Self.batchJobFromEnvironment()
    ) {
        self.busyPoll = busyPoll
        self.batchJob = batchJob
        self.lifetime = lifetime
        self.waitForHost = waitForHost
        self.url = url
        self.tlsTrust = tlsTrust
        self.heartbeat = heartbeat
        self.secret = secret
        self.token = token
        self.hostPID = hostPID
        self.limits = limits
        self.descriptorChannel = descriptorChannel
        self.inlineLimit = inlineLimit
    }

    /// Whether this process was launched as a daemon.
    static var isDaemonProcess: Bool {
        getenv(DaemonEnvironment.role).map { String(cString: $0) } == DaemonEnvironment.daemonRole
    }

    /// Reads the configuration a host put in the environment, and removes it from the
    /// environment (so jobs, and processes they start, never see the secret).
    static func takeFromEnvironment() throws(DaemonConfigurationError) -> DaemonConfiguration {
        func take(_ name: String) -> String? {
            guard let pointer = getenv(name) else { return nil }
            let value = String(cString: pointer)
            // unsetenv only drops the pointer; the bytes stay in the environment block
            // that /proc/PID/environ shows. Overwrite them first.
            memset(pointer, 0x2a, strlen(pointer))
            unsetenv(name)
            return value
        }
        let url = take(DaemonEnvironment.url)
        var secretHex = take(DaemonEnvironment.secret)
        if secretHex == nil, let path = take(DaemonEnvironment.secretFile) { secretHex = try takeSecret(fromFile: path) }
        if secretHex == nil, take(DaemonEnvironment.secretOnStandardInput) == "1" { secretHex = readLine(strippingNewline: true) }
        let token = take(DaemonEnvironment.token) ?? ""
        let hostPID = take(DaemonEnvironment.hostPID).flatMap { Int32($0) }
        let descriptorChannel = take(DaemonEnvironment.descriptors).flatMap { Int32($0) }
        let inlineLimit = take(DaemonEnvironment.inlineLimit).flatMap { Int($0) } ?? 1 << 20
        let limits = take(DaemonEnvironment.maxFrameLength).flatMap { Int($0) }.map { WireLimits(maxFrameLength: $0) } ?? WireLimits()
        let pin = take(DaemonEnvironment.tlsPin)
        let authority = take(DaemonEnvironment.tlsAuthority)
        let tlsTrust: DaemonTLSTrust? = pin.map { .pinnedCertificate(sha256: $0) } ?? authority.map { .certificateAuthority(path: $0) }
        let heartbeat = take(DaemonEnvironment.heartbeat).flatMap(HeartbeatSettings.init(environmentValue:))
        let lifetime = take(DaemonEnvironment.lifetime).flatMap(DaemonLifetime.init(environmentValue:)) ?? DaemonLifetime()
        let waitForHost = take(DaemonEnvironment.waitForHost).flatMap { Int64($0) }.map { Duration.milliseconds($0) }
        let busyPoll = take(DaemonEnvironment.busyPoll).flatMap { Int64($0) }.map { Duration.microseconds($0) } ?? BusyWait.defaultBusyPoll
        _ = take(DaemonEnvironment.role)
        guard let url else { throw DaemonConfigurationError("\(DaemonEnvironment.url) is not set") }
        guard let secretHex, let secret = HostSecret(hex: secretHex) else {
            throw DaemonConfigurationError("\(DaemonEnvironment.secret) is missing or not hex")
        }
        return DaemonConfiguration(
            url: url, secret: secret, token: token, hostPID: hostPID, limits: limits, descriptorChannel: descriptorChannel,
            inlineLimit: inlineLimit, tlsTrust: tlsTrust, heartbeat: heartbeat, lifetime: lifetime, waitForHost: waitForHost, busyPoll: busyPoll
        )
    }
}

extension DaemonConfiguration {
    /// The job a resource manager runs this process in, from the variables Slurm, PBS,
    /// LSF and SGE set: `slurm 1234`, `pbs 56.server`, `lsf 78`, `sge 90`.
    public static func batchJobFromEnvironment() -> String? {
        let managers = [("SLURM_JOB_ID", "slurm"), ("PBS_JOBID", "pbs"), ("LSB_JOBID", "lsf"), ("JOB_ID", "sge")]
        for (variable, manager) in managers {
            // SGE's JOB_ID is a common name: only with SGE_ROOT set is it SGE's.
            guard variable != "JOB_ID" || getenv("SGE_ROOT") != nil, let value = getenv(variable) else { continue }
            return "\(manager) \(String(cString: value))"
        }
        return nil
    }

    /// The first line of the secret file at `path`, which is then deleted; it must be
    /// readable by its owner only.
    static func takeSecret(fromFile path: String) throws(DaemonConfigurationError) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { throw DaemonConfigurationError("cannot read the secret file \(path): \(String(cString: strerror(errno)))") }
        defer { unlink(path) }
        guard info.st_mode & 0o077 == 0 else { throw DaemonConfigurationError("the secret file \(path) may be read by others (mode \(String(info.st_mode & 0o777, radix: 8))): refusing it") }
        guard let file = fopen(path, "r") else { throw DaemonConfigurationError("cannot open the secret file \(path): \(String(cString: strerror(errno)))") }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        guard fgets(&line, Int32(line.count), file) != nil else { throw DaemonConfigurationError("the secret file \(path) is empty") }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(text.prefix { !$0.isNewline })
    }
}

/// A daemon configuration that is missing or invalid.
public struct DaemonConfigurationError: Error, CustomStringConvertible, Sendable {
    /// What is wrong.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
