import KapselSharedMemory
import KapselWire

#if canImport(Glibc)
import Glibc
#endif

/// Starts daemons as child processes of the host: the host's own executable (or a
/// given one) with the daemon role and connection details in its environment, either
/// directly, through a shell command template (`DaemonOptions.Launch.command`) or
/// through `ssh` (`.ssh`); or, for `.manual`, not at all.
///
/// The secret travels in the environment (or, over SSH, through a pipe), never on a
/// command line (where `ps` would show it); the daemon removes it from its environment
/// once read.
struct LocalLauncher: DaemonLauncher {
    let executable: String
    let arguments: [String]
    let environment: [String: String]
    let forwardOutput: Bool
    /// How daemons start.
    let launch: DaemonOptions.Launch
    /// The daemon's own settings (`KAPSEL_...`), without the launch token.
    let settings: [String: String]
    /// The daemon program and its arguments.
    let daemonCommand: [String]

    init(
        executable: String, arguments: [String], launch: DaemonOptions.Launch, extraEnvironment: [String: String], url: String,
        secret: HostSecret, tlsTrust: DaemonTLSTrust?, heartbeat: HeartbeatSettings?, lifetime: DaemonLifetime, waitForHost: Duration?, forwardOutput: Bool, inlineLimit: Int, maxFrameLength: Int
    ) {
        self.launch = launch
        self.daemonCommand = [executable] + arguments
        switch launch {
        case .local, .manual:
            self.executable = executable
            self.arguments = arguments
        case .command(let template):
            self.executable = "/bin/sh"
            self.arguments = ["-c", template.replacing("{command}", with: daemonCommand.map(shellQuoted).joined(separator: " "))]
        case .ssh:
            // The command names the slot (its token, its tunnel): made at each launch.
            self.executable = "/bin/sh"
            self.arguments = []
        }
        self.forwardOutput = forwardOutput
        var settings: [String: String] = [:]
        // The Swift crash backtracer can hang a crashing daemon for ever: off, unless
        // the caller set it explicitly for daemons.
        settings["SWIFT_BACKTRACE"] = extraEnvironment["SWIFT_BACKTRACE"] ?? "enable=no"
        settings[DaemonEnvironment.role] = DaemonEnvironment.daemonRole
        settings[DaemonEnvironment.url] = url
        settings[DaemonEnvironment.secret] = secret.hex
        // A daemon behind a wrapper is not the host's child: no parent check for it.
        if launch == .local { settings[DaemonEnvironment.hostPID] = String(getpid()) }
        settings[DaemonEnvironment.inlineLimit] = String(inlineLimit)
        settings[DaemonEnvironment.maxFrameLength] = String(maxFrameLength)
        if let heartbeat { settings[DaemonEnvironment.heartbeat] = heartbeat.environmentValue }
        if lifetime.isLimited { settings[DaemonEnvironment.lifetime] = lifetime.environmentValue }
        if let waitForHost, launch != .local { settings[DaemonEnvironment.waitForHost] = String(waitForHost.wholeMilliseconds) }
        switch tlsTrust {
        case .pinnedCertificate(let fingerprint): settings[DaemonEnvironment.tlsPin] = fingerprint
        case .certificateAuthority(let path): settings[DaemonEnvironment.tlsAuthority] = path
        case nil: break
        }
        self.settings = settings
        var environment = currentEnvironment().filter { !$0.key.hasPrefix("KAPSEL_") }
        environment.merge(extraEnvironment) { _, new in new }
        environment.merge(settings) { _, new in new }
        self.environment = environment
    }

    /// The shell command that starts the daemon of the slot holding `token`, with
    /// `executable` in place of this pool's daemon executable if given: its settings
    /// (the secret included) as variable assignments, then the program.
    /// Over SSH the secret is left out (it comes through standard input) and the URL
    /// may be the daemon's end of a tunnel.
    func shellCommand(token: String, executable: String?, url: HostAddress? = nil, secretThroughStandardInput: Bool = false) -> String {
        var assignments = settings.merging([DaemonEnvironment.token: token]) { _, new in new }
        assignments[DaemonEnvironment.hostPID] = nil
        if let url { assignments[DaemonEnvironment.url] = url.description }
        if secretThroughStandardInput {
            assignments[DaemonEnvironment.secret] = nil
            assignments[DaemonEnvironment.secretOnStandardInput] = "1"
        }
        let program = [executable ?? daemonCommand[0]] + daemonCommand.dropFirst()
        return (assignments.sorted { $0.key < $1.key }.map { "\($0.key)=\(shellQuoted($0.value))" } + program.map(shellQuoted)).joined(separator: " ")
    }

    /// A direct child gets a descriptor channel (its descriptor 3) for shared memory;
    /// a daemon started through a command may run elsewhere and gets none.
    /// A daemon deployed by hand is not launched: it joins with the slot's token.
    func launch(slot: Int, instance: Int, token: String, dispatcher: Dispatcher) {
        guard launch != .manual else { return }
        var environment = self.environment
        environment[DaemonEnvironment.token] = token
        var arguments = self.arguments
        if case .ssh(let ssh) = launch, let url = try? HostAddress(parsing: settings[DaemonEnvironment.url] ?? "") {
            let remote = shellCommand(token: token, executable: ssh.remoteExecutable, url: ssh.daemonURL(url, slot: slot), secretThroughStandardInput: true)
            arguments = ["-c", ssh.shellCommand(remoteCommand: remote, slot: slot, hostPort: url.port)]
        }
        var request = ProcessSupervisor.SpawnRequest(executable: executable, arguments: arguments, environment: environment, forwardOutput: forwardOutput)
        var descriptors: DescriptorChannel?
        if launch == .local {
            do {
                let (hostEnd, daemonEnd) = try DescriptorChannel.pair()
                descriptors = hostEnd
                request.extraDescriptor = daemonEnd
                request.environment[DaemonEnvironment.descriptors] = "3"
            } catch {
                // A daemon without a channel still runs jobs; shared memory to it fails clearly.
                writeToStandardError("kapsel: daemon \(slot) starts without shared memory: \(error)\n")
            }
        }
        ProcessSupervisor.shared.spawn(request, started: { [descriptors] result in
            dispatcher.perform { $0.launched(slot: slot, instance: instance, result: result, descriptors: descriptors) }
        }, exited: { report in
            dispatcher.perform { $0.processExited(slot: slot, instance: instance, termination: report.termination, output: report.outputTail) }
        })
    }
}

/// `text` quoted for a POSIX shell: in single quotes, with any single quote spelled '\''.
func shellQuoted(_ text: String) -> String {
    let safe = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "/._-=:,+@%".contains($0) }
    return safe ? text : "'" + text.replacing("'", with: "'\\''") + "'"
}

/// The environment of this process as a dictionary (the first value wins for a name
/// that appears twice, as `getenv` does).
func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            let name = String(text[..<equals])
            if result[name] == nil { result[name] = String(text[text.index(after: equals)...]) }
        }
        pointer += 1
    }
    return result
}

/// The path of this process's executable.
func currentExecutablePath() -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
