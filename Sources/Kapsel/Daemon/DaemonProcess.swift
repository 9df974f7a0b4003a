import CKapselShim
import Dispatch
import KapselSharedMemory
import KapselWire
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The life of a daemon process: connect, authenticate, run jobs until the host says
/// stop or goes away, then exit with a `DaemonExitCode`.
///
/// Two lifelines end a daemon whose host dies: the end of its connection (noticed
/// within milliseconds), and, for a daemon the host launched itself, the kernel's
/// parent-death signal (the host spawns daemons from a thread that lives as long as
/// the host, so the signal fires only when the host process ends).
enum DaemonProcess {
    static func run(_ configuration: DaemonConfiguration, registry: DaemonRegistry) -> Never {
        if let hostPID = configuration.hostPID {
            _ = kapsel_set_parent_death_signal(SIGKILL)
            if getppid() != hostPID { exit(.hostLost, "kapsel daemon: the host (pid \(hostPID)) is already gone") }
        }
        let address: HostAddress
        do {
            address = try HostAddress(parsing: configuration.url)
        } catch {
            exit(.configuration, "kapsel daemon: \(error)")
        }
        var tls: DaemonTLS?
        if address.transport == .tls {
            guard let trust = configuration.tlsTrust else {
                exit(.configuration, "kapsel daemon: \(address) uses TLS, but neither \(DaemonEnvironment.tlsPin) nor \(DaemonEnvironment.tlsAuthority) says which certificate to trust")
            }
            do {
                tls = try DaemonTLS(trust: trust, host: address.host)
            } catch {
                exit(.configuration, "kapsel daemon: cannot set up TLS: \(error)")
            }
        }
        let connector = DaemonConnector(configuration: configuration, registry: registry, address: address, tls: tls)
        do {
            _ = try connector.connect().wait()
        } catch {
            exit(.cannotConnect, "kapsel daemon: cannot connect to \(configuration.url): \(error)")
        }
        // Serve the main queue (and with it the main actor) while the event loop and
        // the job tasks do the work; the connection's handler ends the process.
        dispatchMain()
    }

    /// Ends the process at once, after printing `message` (if any) to standard error.
    static func exit(_ code: DaemonExitCode, _ message: String? = nil) -> Never {
        fflush(nil)
        if let message { writeToStandardError(message + "\n") }
        _exit(code.rawValue)
    }
}

/// Connects a daemon to its host, and again after losing it when the daemon may wait
/// for its host (`DaemonConfiguration.waitForHost`): an attempt every second until the
/// wait is over, then the daemon exits with `.hostLost`.
final class DaemonConnector: Sendable {
    private let configuration: DaemonConfiguration
    private let registry: DaemonRegistry
    private let address: HostAddress
    private let tls: DaemonTLS?
    private let descriptors: DescriptorChannel?
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init(configuration: DaemonConfiguration, registry: DaemonRegistry, address: HostAddress, tls: DaemonTLS?) {
        self.configuration = configuration
        self.registry = registry
        self.address = address
        self.tls = tls
        self.descriptors = configuration.descriptorChannel.map { DescriptorChannel(socket: $0) }
    }

    /// One attempt to connect: over a Unix socket without NIO (`LocalHostConnection`),
    /// over TCP and TLS with it.
    func connect() -> EventLoopFuture<Void> {
        let onExit: @Sendable (DaemonExitCode, String?) -> Void = { code, message in DaemonProcess.exit(code, message) }
        if address.transport == .unix {
            let loop = group.next()
            return loop.makeCompletedFuture {
                try LocalHostConnection.connect(
                    path: address.host, configuration: configuration, registry: registry, descriptors: descriptors, timerLoop: loop,
                    onExit: onExit, onHostLost: { self.hostLost($0) }
                )
            }
        }
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.seconds(10))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try tls.makeHandler()) }
                    let decoder = FrameDecoder(limits: configuration.limits, handshakeFrames: 2)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                    try channel.pipeline.syncOperations.addHandler(DaemonConnectionHandler(
                        configuration: configuration, registry: registry, descriptors: descriptors, tlsMismatch: tls?.mismatch,
                        onExit: onExit, onHostLost: { self.hostLost($0) }
                    ))
                }
            }
        return bootstrap.connect(host: address.host, port: address.port).map { _ in }
    }

    /// The connection to the host broke (`reason`): exit, or wait for the host.
    func hostLost(_ reason: String) {
        guard let wait = configuration.waitForHost else {
            DaemonProcess.exit(.hostLost, "kapsel daemon \(getpid()): \(reason)")
        }
        writeToStandardError("kapsel daemon \(getpid()): \(reason); waiting up to \(wait) for the host\n")
        attempt(until: .now() + TimeAmount(wait))
    }

    private func attempt(until deadline: NIODeadline) {
        group.next().scheduleTask(in: .seconds(1)) {
            self.connect().whenFailure { error in
                guard NIODeadline.now() < deadline else {
                    DaemonProcess.exit(.hostLost, "kapsel daemon \(getpid()): the host did not come back: \(error)")
                }
                self.attempt(until: deadline)
            }
        }
    }
}
