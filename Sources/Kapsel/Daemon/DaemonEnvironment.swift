/// Names of the environment variables through which a host configures the daemons it
/// launches. The daemon removes them from its environment once read.
enum DaemonEnvironment {
    /// `daemon` in a process launched as a daemon.
    static let role = "KAPSEL_ROLE"
    static let daemonRole = "daemon"
    /// The host's address, e.g. `unix:///tmp/kapsel-x1y2z3/host.sock`.
    static let url = "KAPSEL_HOST_URL"
    /// The per-host secret, hex.
    static let secret = "KAPSEL_SECRET"
    /// A file, readable only by its owner, whose first line is the secret; the daemon
    /// deletes it once read (for batch jobs, whose environment a resource manager may show).
    static let secretFile = "KAPSEL_SECRET_FILE"
    /// `1`: the secret comes as the first line of standard input (over SSH).
    static let secretOnStandardInput = "KAPSEL_SECRET_STDIN"
    /// The launch token that tells the host which slot this daemon fills.
    static let token = "KAPSEL_TOKEN"
    /// The host's pid, to notice a host that died before the daemon set its parent-death signal.
    static let hostPID = "KAPSEL_HOST_PID"
    /// The descriptor of the channel that carries shared memory descriptors.
    static let descriptors = "KAPSEL_DESCRIPTOR_FD"
    /// Arrays of at least this many bytes travel as shared memory instead of bytes.
    static let inlineLimit = "KAPSEL_INLINE_LIMIT"
    /// The SHA-256 fingerprint of the host's TLS certificate, which the daemon pins.
    static let tlsPin = "KAPSEL_TLS_PIN"
    /// The CA certificate (PEM file) the daemon verifies the host's TLS chain against.
    static let tlsAuthority = "KAPSEL_TLS_CA"
    /// Heartbeats on the connection: `interval:timeout` in milliseconds.
    static let heartbeat = "KAPSEL_HEARTBEAT"
    /// When the daemon retires: `idle:wall:jobs` (milliseconds, milliseconds, count; 0 for none).
    static let lifetime = "KAPSEL_LIFETIME"
    /// How long, in milliseconds, the daemon tries to reconnect after losing its host.
    static let waitForHost = "KAPSEL_WAIT_FOR_HOST_MS"
    /// How long, in microseconds, a thread reading a local connection stays awake for
    /// the host's next message (`DaemonOptions.busyPoll`).
    static let busyPoll = "KAPSEL_BUSY_POLL_US"
    /// The largest frame the daemon accepts from the host.
    static let maxFrameLength = "KAPSEL_MAX_FRAME_LENGTH"
}
