import KapselSharedMemory
import KapselWire
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// The host's listening socket, where daemons connect and authenticate: a Unix domain
/// socket in a private (0700) directory for local daemons, or a TCP port (with TLS
/// when the address says `tls+tcp`).
final class HostListener: Sendable {
    /// Where the host listens, with the real port when port 0 was asked for.
    let address: HostAddress
    /// The private directory of a Unix socket, removed on close.
    private let directory: String?
    private let channel: any Channel

    private init(address: HostAddress, directory: String?, channel: any Channel) {
        self.address = address
        self.directory = directory
        self.channel = channel
    }

    /// The URL daemons connect to.
    var url: String { address.description }

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

    /// Listens at `address` (a Unix socket path inside `directory`, or a TCP address)
    /// and serves connections with `makeHandler`, behind TLS when `tls` is given.
    static func bind(
        _ address: HostAddress, directory: String?, tls: NIOSSLContext?, group: any EventLoopGroup, limits: WireLimits,
        makeHandler: @escaping @Sendable () -> HostConnectionHandler
    ) async throws -> HostListener {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limits: limits, handshakeFrames: 1)))
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
        switch address.transport {
        case .unix:
            let channel = try await bootstrap.bind(unixDomainSocketPath: address.host).get()
            return HostListener(address: address, directory: directory, channel: channel)
        case .tcp, .tls:
            let channel = try await bootstrap.bind(host: address.host, port: address.port).get()
            let port = channel.localAddress?.port ?? address.port
            return HostListener(address: address.withPort(port), directory: nil, channel: channel)
        }
    }

    /// Stops accepting connections and removes a Unix socket and its directory.
    func close() async {
        try? await channel.close()
        if let directory {
            unlink(address.host)
            rmdir(directory)
        }
    }
}
