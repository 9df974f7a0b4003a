import KapselSharedMemory
import KapselWire
import NIOCore
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's end of its host connection: the handshake (answer the host's
/// challenge, check the host's proof), then requests handed to the `JobRunner`.
final class DaemonConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WireMessage
    typealias OutboundOut = ByteBuffer

    private enum State {
        case awaitingChallenge
        case awaitingWelcome(hostNonce: [UInt8], daemonNonce: [UInt8])
        case ready(JobRunner, ActorHost)
        case finished
    }

    private let configuration: DaemonConfiguration
    private let registry: DaemonRegistry
    private let descriptors: DescriptorChannel?
    /// Set when the host's TLS certificate was not the pinned one.
    private let tlsMismatch: CertificateMismatch?
    private var state = State.awaitingChallenge
    private let heartbeat: HeartbeatMonitor?
    private var carrier: (any AttachmentCarrier)?
    private let lifetime: LifetimeMonitor?

    /// Called once when the connection to the host breaks.
    private let onHostLost: (String) -> Void

    init(
        configuration: DaemonConfiguration, registry: DaemonRegistry, descriptors: DescriptorChannel?, tlsMismatch: CertificateMismatch? = nil,
        onHostLost: @escaping (String) -> Void
    ) {
        self.onHostLost = onHostLost
        self.configuration = configuration
        self.registry = registry
        self.descriptors = descriptors
        self.tlsMismatch = tlsMismatch
        self.heartbeat = configuration.heartbeat.map(HeartbeatMonitor.init)
        self.lifetime = configuration.lifetime.isLimited ? LifetimeMonitor(configuration.lifetime) : nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        heartbeat?.heard()
        switch (state, message) {
        case (.awaitingChallenge, .challenge(let challenge)):
            guard challenge.protocolVersion == WireMessage.protocolVersion else {
                finish(.protocolError, "the host speaks protocol version \(challenge.protocolVersion), this daemon \(WireMessage.protocolVersion)")
            }
            let nonce = randomNonce()
            let proof = configuration.secret.daemonProof(hostNonce: challenge.nonce, daemonNonce: nonce, token: configuration.token)
            let hello = Hello(pid: getpid(), token: configuration.token, nonce: nonce, proof: proof)
            context.writeAndFlush(wrapOutboundOut(WireMessage.hello(hello).frame(allocator: context.channel.allocator)), promise: nil)
            state = .awaitingWelcome(hostNonce: challenge.nonce, daemonNonce: nonce)
        case (.awaitingWelcome(let hostNonce, let daemonNonce), .welcome(let welcome)):
            let expected = configuration.secret.hostProof(hostNonce: hostNonce, daemonNonce: daemonNonce)
            guard HostSecret.proofsMatch(welcome.proof, expected) else {
                finish(.refused, "the host could not prove it knows the secret; refusing to work for it")
            }
            let actorSystem = KapselActorSystem(role: .daemon(registry.actors), inlineLimit: configuration.inlineLimit)
            registry.actors.setIdentity(slot: Int(welcome.daemonIndex), instance: Int(welcome.instance))
            let daemonContext = DaemonContext(daemonIndex: Int(welcome.daemonIndex), instance: Int(welcome.instance), processID: getpid(), actorSystem: actorSystem)
            let channel = context.channel
            registry.actors.observeCount { count in
                channel.writeAndFlush(WireMessage.actorCount(UInt32(count)).frame(allocator: channel.allocator), promise: nil)
            }
            let carrier = makeCarrier(channel: channel, descriptors: descriptors, limits: configuration.limits)
            self.carrier = carrier
            state = .ready(
                JobRunner(
                    channel: channel, registry: registry.jobs, context: daemonContext, carrier: carrier, inlineLimit: configuration.inlineLimit,
                    startsOnLoop: configuration.heartbeat == nil
                ),
                ActorHost(channel: channel, system: actorSystem, factories: registry.factories, carrier: carrier, context: daemonContext)
            )
            if let lifetime, case .ready(let runner, _) = state {
                let actors = registry.actors
                runner.onJobFinished = { lifetime.jobFinished() }
                lifetime.start(on: context.eventLoop, isIdle: { runner.isIdle && actors.liveCount == 0 }, announce: { code in
                    channel.writeAndFlush(WireMessage.retiring(exitCode: UInt8(code.rawValue)).frame(allocator: channel.allocator), promise: nil)
                })
            }
            if let heartbeat = configuration.heartbeat {
                self.heartbeat?.start(context: context) {
                    self.hostLost("no word from the host for \(heartbeat.timeout); it is gone or cut off", context: context)
                }
            }
        case (_, .heartbeat), (.finished, _):
            // A heartbeat is harmless in any state (the host's start once it has admitted
            // this daemon); after the connection was given up, frames still decoded from
            // what it had read are dropped.
            break
        case (.ready, .attachmentChunk(let chunk)):
            do {
                try carrier?.received(chunk)
            } catch {
                finish(.protocolError, "cannot receive streamed shared memory from the host: \(error)")
            }
        case (_, .refused(let reason)):
            finish(.refused, "the host refused this daemon: \(reason)")
        case (.ready(let runner, _), .run(let request)):
            lifetime?.jobArrived()
            runner.enqueue(request)
        case (.ready(_, let actors), .call(let request)):
            actors.handle(request)
        case (.ready(let runner, let actors), .cancel(let requestID)):
            if !actors.cancel(requestID) { runner.cancel(requestID) }
        case (.ready(let runner, _), .released(let tokens)):
            runner.peerReleased(tokens)
        case (.ready(let runner, _), .releasesWanted):
            runner.peerWantsReleases()
        case (.ready(let runner, _), .forget(let names)):
            runner.peerForgot(names)
        case (.ready, .releaseActors(let releases)):
            registry.actors.release(releases)
        case (.ready, .shutdown):
            finish(lifetime?.retiring ?? .stopped)
        default:
            finish(.protocolError, "unexpected \(message.kindName) message from the host")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .finished = state { return }
        if let mismatch = tlsMismatch?.recorded {
            finish(.refused, "\(mismatch); refusing to connect")
        }
        if error is NIOSSLError, case .awaitingChallenge = state {
            finish(.refused, "the TLS handshake with the host failed: \(error)")
        }
        if case .ready = state, error is IOError {
            hostLost("the connection to the host failed: \(error)", context: context)
            return
        }
        finish(.protocolError, "the connection to the host failed: \(error)")
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        carrier?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        hostLost("the connection to the host closed", context: context)
    }

    /// The host is gone or cut off: this connection's work stops (the host has resolved
    /// it already), and the connector exits or waits for the host.
    private func hostLost(_ reason: String, context: ChannelHandlerContext) {
        if case .finished = state { return }
        if case .ready(let runner, let actors) = state {
            runner.abandon()
            actors.abandon()
        }
        state = .finished
        heartbeat?.stop()
        lifetime?.stop()
        carrier?.connectionClosed()
        context.close(promise: nil)
        onHostLost(reason)
    }

    private func finish(_ code: DaemonExitCode, _ message: String? = nil) -> Never {
        state = .finished
        DaemonProcess.exit(code, message.map { "kapsel daemon \(getpid()): \($0)" })
    }
}
