import KapselSharedMemory
import KapselWire
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A daemon's connection to a host on this machine, over its Unix socket, without an
/// event loop: threads of its own read it (`ReaderRelay`) and hand each message to the
/// `DaemonSession`, and whichever thread sends writes it (`SocketWriter`). A job or call
/// that never suspends runs on the reading thread and its answer goes out from there: no
/// hop between the host's request and the daemon's answer.
enum LocalHostConnection {
    /// Connects to the host's socket at `path` and starts the session; `timerLoop` runs its
    /// timers. Throws when the socket cannot be connected.
    static func connect(
        path: String, configuration: DaemonConfiguration, registry: DaemonRegistry, descriptors: DescriptorChannel?, timerLoop: any EventLoop,
        onExit: @escaping @Sendable (DaemonExitCode, String?) -> Void, onHostLost: @escaping @Sendable (String) -> Void
    ) throws {
        let socket = try UnixSocket.connect(to: path)
        guard let socketWriter = SocketWriter(duplicating: socket) else {
            close(socket)
            throw UnixSocketError("cannot duplicate the connection's descriptor")
        }
        let reader = ReaderRelay(descriptor: socket, limits: configuration.limits, handshakeFrames: 2, busyPoll: configuration.busyPoll)
        let session = DaemonSession(
            configuration: configuration, registry: registry, descriptors: descriptors, writer: ConnectionWriter(socket: socketWriter, eventLoop: timerLoop),
            startsInline: true, closeConnection: { reader.shutDown() }, onExit: onExit, onHostLost: onHostLost
        )
        reader.start(received: { message in
            session.received(message)
        }, ended: { ending in
            if let error = ending {
                session.failed(error is WireError ? .other(String(describing: error)) : .io(String(describing: error)))
            }
            session.closed()
        })
    }
}
