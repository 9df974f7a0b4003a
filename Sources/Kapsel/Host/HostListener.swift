import KapselSharedMemory
import KapselWire
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The host's listening socket: a Unix domain socket in a private (0700) directory,
/// where daemons connect and authenticate.
final class HostListener: Sendable {
    /// The socket's path.
    let socketPath: String
    private let directory: String
    private let channel: any Channel

    private init(socketPath: String, directory: String, channel: any Channel) {
        self.socketPath = socketPath
        self.directory = directory
        self.channel = channel
    }

    /// `unix://` URL of the socket.
    var url: String { "unix://" + socketPath }

    /// Makes a private directory for a socket: `mkdtemp` creates it with mode 0700.
    static func makePrivateDirectory() throws -> String {
        var candidates = ["/tmp"]
        if let tmp = getenv("TMPDIR").map({ String(cString: $0) }), !tmp.isEmpty, tmp.utf8.count < 60 {
            candidates.insert(tmp, at: 0)
        }
        for base in candidates {
            var template = Array((base.hasSuffix("/") ? base : base + "/").utf8CString.dropLast()) + Array("kapsel-XXXXXX".utf8CString)
            if mkdtemp(&template) != nil {
                return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            }
        }
        throw DaemonsError("cannot create a private socket directory in /tmp: \(String(cString: strerror(errno)))")
    }

    /// Binds the socket in `directory` and serves connections with `makeHandler`.
    static func bind(
        in directory: String, group: any EventLoopGroup, limits: WireLimits,
        makeHandler: @escaping @Sendable () -> HostConnectionHandler
    ) async throws -> HostListener {
        let socketPath = directory + "/host.sock"
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limits: limits, handshakeFrames: 1)))
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
            .bind(unixDomainSocketPath: socketPath)
            .get()
        return HostListener(socketPath: socketPath, directory: directory, channel: channel)
    }

    /// Stops accepting connections and removes the socket and its directory.
    func close() async {
        try? await channel.close()
        unlink(socketPath)
        rmdir(directory)
    }
}

/// The host's end of a daemon connection, as the dispatcher sees it.
final class ChannelLink: DaemonLink {
    private let channel: any Channel
    private let transport: AttachmentTransport?

    init(channel: any Channel, transport: AttachmentTransport?) {
        self.channel = channel
        self.transport = transport
    }

    /// Descriptors first, then the frame, so the daemon finds them when it reads the
    /// message. A daemon that cannot take them has a broken connection: it is closed, and
    /// what it held resolves as `connectionLost`.
    func send(_ message: WireMessage, attachments: [SharedStorage]) {
        var message = message
        if !attachments.isEmpty, let tag = message.attachmentTag {
            guard let transport else {
                channel.pipeline.fireErrorCaught(SharedMemoryError("this daemon cannot receive shared memory (no descriptor channel)"))
                return
            }
            do {
                message = message.withAttachments(try transport.send(attachments, tag: tag))
            } catch {
                channel.pipeline.fireErrorCaught(SharedMemoryError("cannot pass shared memory to the daemon: \(error)"))
                return
            }
        }
        channel.writeAndFlush(message.frame(allocator: channel.allocator), promise: nil)
    }

    func close() {
        channel.close(promise: nil)
    }

    var peerDescription: String {
        channel.remoteAddress.map { "\($0)" } ?? "local"
    }
}
