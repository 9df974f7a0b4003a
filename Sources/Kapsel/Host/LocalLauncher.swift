import KapselSharedMemory
import KapselWire

#if canImport(Glibc)
import Glibc
#endif

/// Starts daemons as child processes of the host: the host's own executable (or a
/// given one) with the daemon role and connection details in its environment, either
/// directly or through a shell command template (`DaemonOptions.Launch.command`).
///
/// The secret travels in the environment, never on the command line (where `ps`
/// would show it); the daemon removes it from its environment once read.
struct LocalLauncher: DaemonLauncher {
    let executable: String
    let arguments: [String]
    let environment: [String: String]
    let forwardOutput: Bool
    /// Whether the daemon is the launched process itself (else a shell command runs it).
    let isDirect: Bool

    init(
        executable: String, arguments: [String], launch: DaemonOptions.Launch, extraEnvironment: [String: String], url: String,
        secret: HostSecret, tlsTrust: DaemonTLSTrust?, heartbeat: HeartbeatSettings?, forwardOutput: Bool, inlineLimit: Int, maxFrameLength: Int
    ) {
        switch launch {
        case .local:
            self.executable = executable
            self.arguments = arguments
            self.isDirect = true
        case .command(let template):
            let command = ([executable] + arguments).map(shellQuoted).joined(separator: " ")
            self.executable = "/bin/sh"
            self.arguments = ["-c", template.replacing("{command}", with: command)]
            self.isDirect = false
        }
        self.forwardOutput = forwardOutput
        var environment = currentEnvironment().filter { !$0.key.hasPrefix("KAPSEL_") }
        environment.merge(extraEnvironment) { _, new in new }
        // The Swift crash backtracer can hang a crashing daemon for ever: off, unless
        // the caller set it explicitly for daemons.
        if extraEnvironment["SWIFT_BACKTRACE"] == nil { environment["SWIFT_BACKTRACE"] = "enable=no" }
        environment[DaemonEnvironment.role] = DaemonEnvironment.daemonRole
        environment[DaemonEnvironment.url] = url
        environment[DaemonEnvironment.secret] = secret.hex
        // A daemon behind a wrapper is not the host's child: no parent check for it.
        if isDirect { environment[DaemonEnvironment.hostPID] = String(getpid()) }
        environment[DaemonEnvironment.inlineLimit] = String(inlineLimit)
        environment[DaemonEnvironment.maxFrameLength] = String(maxFrameLength)
        if let heartbeat { environment[DaemonEnvironment.heartbeat] = heartbeat.environmentValue }
        switch tlsTrust {
        case .pinnedCertificate(let fingerprint): environment[DaemonEnvironment.tlsPin] = fingerprint
        case .certificateAuthority(let path): environment[DaemonEnvironment.tlsAuthority] = path
        case nil: break
        }
        self.environment = environment
    }

    /// A direct child gets a descriptor channel (its descriptor 3) for shared memory;
    /// a daemon started through a command may run elsewhere and gets none.
    func launch(slot: Int, instance: Int, token: String, dispatcher: Dispatcher) {
        var environment = self.environment
        environment[DaemonEnvironment.token] = token
        var request = ProcessSupervisor.SpawnRequest(executable: executable, arguments: arguments, environment: environment, forwardOutput: forwardOutput)
        var descriptors: DescriptorChannel?
        if isDirect {
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
