import KapselSharedMemory
import KapselWire

#if canImport(Glibc)
import Glibc
#endif

/// Starts daemon processes as children of the host: the host's own executable (or a
/// given one) with the daemon role and connection details in its environment, either
/// directly (`.local`) or through a `Launcher`'s shell command; for `.manual`, not at all.
///
/// The secret travels in the environment (or through a pipe, for launchers that cross
/// machines), never on a command line (where `ps` would show it); the daemon removes it
/// from its environment once read.
struct ProcessLauncher: SlotLauncher {
    let executable: String
    let arguments: [String]
    let environment: [String: String]
    let forwardOutput: Bool
    /// How daemons start.
    let launch: DaemonOptions.Launch
    /// The daemon's own settings (`KAPSEL_...`), without the launch token.
    let settings: [String: String]
    /// The URL daemons dial.
    let hostURL: HostAddress
    /// Where the lines daemons print are logged.
    let observer: PoolObserver

    init(
        executable: String, arguments: [String], launch: DaemonOptions.Launch, extraEnvironment: [String: String], url: HostAddress,
        secret: HostSecret, tlsTrust: DaemonTLSTrust?, heartbeat: HeartbeatSettings?, lifetime: DaemonLifetime, waitForHost: Duration?,
        forwardOutput: Bool, inlineLimit: Int, maxFrameLength: Int, busyPoll: Duration, observer: PoolObserver
    ) {
        self.observer = observer
        self.launch = launch
        self.executable = executable
        self.arguments = arguments
        self.hostURL = url
        self.forwardOutput = forwardOutput
        var settings: [String: String] = [:]
        // The Swift crash backtracer can hang a crashing daemon for ever: off, unless
        // the caller set it explicitly for daemons.
        settings["SWIFT_BACKTRACE"] = extraEnvironment["SWIFT_BACKTRACE"] ?? "enable=no"
        settings[DaemonEnvironment.role] = DaemonEnvironment.daemonRole
        settings[DaemonEnvironment.url] = url.description
        settings[DaemonEnvironment.secret] = secret.hex
        // A daemon behind a wrapper is not the host's child: no parent check for it.
        if launch.isLocal { settings[DaemonEnvironment.hostPID] = String(getpid()) }
        settings[DaemonEnvironment.inlineLimit] = String(inlineLimit)
        settings[DaemonEnvironment.maxFrameLength] = String(maxFrameLength)
        settings[DaemonEnvironment.busyPoll] = String(busyPoll.wholeMicroseconds)
        if let heartbeat { settings[DaemonEnvironment.heartbeat] = heartbeat.environmentValue }
        if lifetime.isLimited { settings[DaemonEnvironment.lifetime] = lifetime.environmentValue }
        if let waitForHost, !launch.isLocal { settings[DaemonEnvironment.waitForHost] = String(waitForHost.wholeMilliseconds) }
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

    /// What a launcher gets for the daemon of `slot`, holding `token`.
    func daemon(slot: Int, token: String) -> DaemonToLaunch {
        DaemonToLaunch(
            slot: slot, program: [executable] + arguments, settings: settings.merging([DaemonEnvironment.token: token]) { _, new in new },
            hostURL: hostURL
        )
    }

    /// The command a person runs to start the daemon of `slot` (holding `token`) by
    /// hand: every setting, the secret included, as variable assignments, then the
    /// program (`executable` in place of this pool's path if given).
    func manualCommand(slot: Int, token: String, executable: String?) -> String {
        let daemon = daemon(slot: slot, token: token)
        var assignments = daemon.settings
        assignments[DaemonEnvironment.hostPID] = nil
        return daemon.assignmentsAndProgram(assignments, executable: executable)
    }

    /// A direct child gets a descriptor channel (its descriptor 3) for shared memory;
    /// a daemon started through a launcher may run elsewhere and gets none (its shared
    /// memory is streamed). A daemon deployed by hand is not launched: it joins with
    /// the slot's token.
    func launch(slot: Int, instance: Int, token: String, dispatcher: Dispatcher) {
        var environment = self.environment
        environment[DaemonEnvironment.token] = token
        var request: ProcessSupervisor.SpawnRequest
        var descriptors: DescriptorChannel?
        var cleanup: ProcessSupervisor.SpawnRequest?
        switch launch {
        case .manual, .inProcess:
            return
        case .custom(let launcher):
            let daemon = daemon(slot: slot, token: token)
            request = ProcessSupervisor.SpawnRequest(executable: "/bin/sh", arguments: ["-c", launcher.shellCommand(for: daemon)], environment: environment, forwardOutput: forwardOutput)
            cleanup = launcher.cleanupCommand(for: daemon).map {
                ProcessSupervisor.SpawnRequest(executable: "/bin/sh", arguments: ["-c", $0], environment: environment, forwardOutput: forwardOutput)
            }
        case .local:
            request = ProcessSupervisor.SpawnRequest(executable: executable, arguments: arguments, environment: environment, forwardOutput: forwardOutput)
            do {
                let (hostEnd, daemonEnd) = try DescriptorChannel.pair()
                descriptors = hostEnd
                request.extraDescriptor = daemonEnd
                request.environment[DaemonEnvironment.descriptors] = "3"
            } catch {
                // A daemon without a channel still runs jobs; its shared memory is streamed.
                writeToStandardError("kapsel: daemon \(slot) starts without a descriptor channel: \(error)\n")
            }
        }
        if observer.wantsDaemonOutput {
            request.onOutputLine = { [observer] pid, line in observer.daemonPrinted(line, slot: slot, instance: instance, pid: pid) }
        }
        ProcessSupervisor.shared.spawn(request, started: { [descriptors] result in
            dispatcher.perform { $0.launched(slot: slot, instance: instance, result: result, descriptors: descriptors) }
        }, exited: { [cleanup] report in
            let ended: @Sendable () -> Void = {
                dispatcher.perform { $0.processExited(slot: slot, instance: instance, termination: report.termination, output: report.outputTail) }
            }
            // The slot ends once what its launch left behind is released.
            guard let cleanup else { return ended() }
            ProcessSupervisor.shared.spawn(cleanup, started: { started in
                if case .failure = started { ended() }
            }, exited: { _ in ended() })
        })
    }
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
