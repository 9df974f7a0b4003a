/// How to start daemons on another machine over SSH (`DaemonOptions.Launch.ssh`).
///
/// ```swift
/// options.remote.listen = "tls+tcp://0.0.0.0:5555"
/// options.launch = .ssh(SSHLaunch(destination: "me@node7", remoteExecutable: "/opt/app/worker"))
/// ```
///
/// Direct: the daemon dials back to the host's URL, which must be reachable from the
/// remote machine. Tunnelled (`tunnelPort`): `ssh -R` makes the host reachable on the
/// remote machine's loopback (daemon `i` at port `tunnelPort + i`), so only the SSH port
/// needs to be open; the host then listens on loopback. The secret reaches the daemon
/// through ssh's standard input, never on a command line; everything else is on the
/// remote command line. The ssh process lives as long as its daemon: when the host stops,
/// the daemons stop and their ssh sessions end.
public struct SSHLaunch: Launcher, Hashable {
    /// `user@host` (or just `host`).
    public var destination: String
    /// The SSH port.
    public var port: Int
    /// A private key file (`ssh -i`), if not the default.
    public var identityFile: String?
    /// More `ssh` arguments, e.g. `["-o", "StrictHostKeyChecking=accept-new"]`.
    public var options: [String]
    /// The daemon executable on the remote machine; by default the same path as here.
    public var remoteExecutable: String?
    /// Tunnelled mode: the first remote loopback port forwarded to the host.
    public var tunnelPort: Int?

    /// Settings for `ssh` to `destination`.
    public init(
        destination: String, port: Int = 22, identityFile: String? = nil, options: [String] = [], remoteExecutable: String? = nil,
        tunnelPort: Int? = nil
    ) {
        self.destination = destination
        self.port = port
        self.identityFile = identityFile
        self.options = options
        self.remoteExecutable = remoteExecutable
        self.tunnelPort = tunnelPort
    }

    /// `ssh <destination>`.
    public var launcherName: String { "ssh \(destination)" }

    /// `ssh` running the daemon's self-contained command line on the remote machine
    /// (through its tunnel in tunnelled mode), the secret piped to its standard input.
    public func shellCommand(for daemon: DaemonToLaunch) -> String {
        var arguments = ["ssh", "-T", "-o", "BatchMode=yes", "-p", String(port)]
        if let identityFile { arguments += ["-i", identityFile] }
        var replacing: [String: String] = [:]
        if let tunnelPort {
            let remotePort = tunnelPort + daemon.slot
            arguments += ["-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:\(remotePort):127.0.0.1:\(daemon.hostURL.port)"]
            replacing[DaemonEnvironment.url] = HostAddress(transport: daemon.hostURL.transport, host: "127.0.0.1", port: remotePort).description
        }
        arguments += options + [destination, daemon.remoteCommandLine(executable: remoteExecutable, replacing: replacing)]
        return "printf '%s\\n' \"$\(DaemonEnvironment.secret)\" | " + arguments.map(shellQuoted).joined(separator: " ")
    }
}
