import KapselSharedMemory
import KapselWire
import NIOCore
import NIOSSL

/// The daemon's end of a host connection NIO reads — over TCP and TLS — at the end of
/// its pipeline (TLS → frame decoder → this): it hands what happens to the connection's
/// `DaemonSession`, telling TLS failures and certificate mismatches apart.
final class DaemonConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WireMessage

    private let makeSession: (ConnectionWriter, any Channel) -> DaemonSession
    /// Set when the host's TLS certificate was not the pinned one.
    private let tlsMismatch: CertificateMismatch?
    private var writer: ConnectionWriter?
    private var session: DaemonSession?

    init(
        configuration: DaemonConfiguration, registry: DaemonRegistry, descriptors: DescriptorChannel?, tlsMismatch: CertificateMismatch? = nil,
        onExit: @escaping @Sendable (DaemonExitCode, String?) -> Void, onHostLost: @escaping @Sendable (String) -> Void
    ) {
        self.tlsMismatch = tlsMismatch
        self.makeSession = { writer, channel in
            DaemonSession(
                configuration: configuration, registry: registry, descriptors: descriptors, writer: writer, startsInline: false,
                closeConnection: { channel.close(promise: nil) }, onExit: onExit, onHostLost: onHostLost
            )
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let writer = ConnectionWriter(channel: context.channel)
        self.writer = writer
        session = makeSession(writer, context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session?.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let description = String(describing: error)
        let failure: DaemonConnectionState.Failure = if let mismatch = tlsMismatch?.recorded {
            .certificateMismatch(mismatch)
        } else if error is NIOSSLError {
            .tls(description)
        } else if error is IOError {
            .io(description)
        } else {
            .other(description)
        }
        session?.failed(failure)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writer?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        session?.closed()
        context.fireChannelInactive()
    }
}
