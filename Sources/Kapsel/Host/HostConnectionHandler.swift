import KapselSharedMemory
import KapselWire
import NIOCore

/// One connection on the host's socket: the mutual handshake, then the daemon's
/// answers handed to the dispatcher.
///
/// Anything wrong (a malformed or oversized frame, a wrong secret, a message out of
/// turn, silence during the handshake) closes this connection only. A stranger is
/// refused with a reason; an authenticated daemon that misbehaves is closed and
/// killed, and the job it held resolves as `connectionLost`.
final class HostConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WireMessage
    typealias OutboundOut = ByteBuffer

    private enum State {
        case awaitingHello(nonce: [UInt8])
        case accepted(slot: Int, instance: Int, carrier: any AttachmentCarrier)
        case closed
    }

    /// How long a connection may take to present its hello.
    static let handshakeTimeout = TimeAmount.seconds(10)

    private let dispatcher: Dispatcher
    private let secret: HostSecret
    private var state = State.closed
    private var handshakeTimer: Scheduled<Void>?
    private var closeReason: String?
    private let heartbeat: HeartbeatMonitor?
    private let heartbeatTimeout: Duration?
    private let limits: WireLimits

    /// `heartbeat`: settings for connections over TCP, where a daemon can vanish
    /// without its connection closing.
    init(dispatcher: Dispatcher, secret: HostSecret, limits: WireLimits = WireLimits(), heartbeat: HeartbeatSettings? = nil) {
        self.dispatcher = dispatcher
        self.secret = secret
        self.limits = limits
        self.heartbeat = heartbeat.map(HeartbeatMonitor.init)
        self.heartbeatTimeout = heartbeat?.timeout
    }

    func channelActive(context: ChannelHandlerContext) {
        let nonce = randomNonce()
        state = .awaitingHello(nonce: nonce)
        write(.challenge(Challenge(nonce: nonce)), context: context)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: Self.handshakeTimeout) {
            let (handler, context) = bound.value
            if case .awaitingHello = handler.state {
                handler.reject("no hello within \(Self.handshakeTimeout)", context: context)
            }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        heartbeat?.heard()
        switch (state, message) {
        case (.awaitingHello(let nonce), .hello(let hello)):
            admit(hello, hostNonce: nonce, context: context)
        case (.accepted(let slot, let instance, let carrier), .result(let result)):
            let attachments: SharedAttachmentReader?
            do {
                attachments = try receiveAttachments(result.attachments, tag: result.requestID, through: carrier)
            } catch {
                violation("cannot receive the shared memory of a result: \(error)", context: context)
                return
            }
            dispatcher.perform { $0.jobFinished(slot: slot, instance: instance, result: result, attachments: attachments) }
        case (.accepted(let slot, let instance, let carrier), .callResult(let result)):
            let attachments: SharedAttachmentReader?
            do {
                attachments = try receiveAttachments(result.attachments, tag: result.requestID, through: carrier)
            } catch {
                violation("cannot receive the shared memory of a call's result: \(error)", context: context)
                return
            }
            dispatcher.perform { $0.callFinished(slot: slot, instance: instance, result: result, attachments: attachments) }
        case (.accepted(let slot, let instance, _), .actorCount(let count)):
            dispatcher.perform { state in
                state.actorCountReported(slot: slot, instance: instance, count: Int(count))
                return []
            }
        case (.accepted, .heartbeat):
            break
        case (.accepted(let slot, let instance, _), .retiring(let exitCode)):
            dispatcher.perform { $0.daemonRetiring(slot: slot, instance: instance, exitCode: exitCode) }
        case (.accepted(_, _, let carrier), .attachmentChunk(let chunk)):
            do {
                try carrier.received(chunk)
            } catch {
                violation("cannot receive streamed shared memory: \(error)", context: context)
            }
        case (.accepted(_, _, let carrier), .released(let tokens)):
            carrier.peerReleased(tokens)
        case (.accepted(_, _, let carrier), .releasesWanted):
            carrier.peerWantsReleases()
        case (.accepted(_, _, let carrier), .forget(let names)):
            carrier.peerForgot(names)
        case (.closed, _):
            break
        default:
            violation("unexpected \(message.kindName) message", context: context)
        }
    }

    private func admit(_ hello: Hello, hostNonce: [UInt8], context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        guard hello.protocolVersion == WireMessage.protocolVersion else {
            reject("protocol version \(hello.protocolVersion) is not supported; this host speaks version \(WireMessage.protocolVersion)", context: context)
            return
        }
        let expected = secret.daemonProof(hostNonce: hostNonce, daemonNonce: hello.nonce, token: hello.token)
        guard HostSecret.proofsMatch(hello.proof, expected) else {
            reject("authentication failed: the daemon's secret does not match this host's", context: context)
            return
        }
        let hostProof = secret.hostProof(hostNonce: hostNonce, daemonNonce: hello.nonce)
        var admission = DispatcherState.Admission.refused("not admitted")
        var carrier: (any AttachmentCarrier)?
        let channel = context.channel
        let limits = self.limits
        dispatcher.perform { state in
            let (decision, actions) = state.daemonAuthenticated(token: hello.token, pid: hello.pid, connect: { descriptors in
                let made = makeCarrier(channel: channel, descriptors: descriptors, limits: limits)
                carrier = made
                return ChannelLink(channel: channel, carrier: made)
            }, welcome: { index, instance in
                .welcome(Welcome(daemonIndex: UInt32(index), instance: UInt32(instance), proof: hostProof))
            })
            admission = decision
            return actions
        }
        switch admission {
        case .accepted(let slot, let instance):
            state = .accepted(slot: slot, instance: instance, carrier: carrier!)
            if let heartbeatTimeout {
                heartbeat?.start(context: context) {
                    self.violation("no word from the daemon for \(heartbeatTimeout): its machine is gone or the link is cut", context: context)
                }
            }
        case .refused(let reason):
            reject(reason, context: context)
        }
    }

    /// What arrived was wrong (a bad frame, memory that cannot be mapped): a violation.
    /// Anything else (a reset, a read error) is the peer going away: the connection just
    /// closes, and for a local daemon its exit status then tells what happened.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is WireError || error is SharedMemoryError {
            violation(String(describing: error), context: context)
        } else if case .awaitingHello = state {
            reject(String(describing: error), context: context)
        } else {
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .accepted(_, _, let carrier) = state { carrier.writabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        heartbeat?.stop()
        handshakeTimer?.cancel()
        if case .accepted(let slot, let instance, let carrier) = state {
            carrier.connectionClosed()
            let reason = closeReason
            dispatcher.perform { $0.connectionClosed(slot: slot, instance: instance, reason: reason) }
        }
        state = .closed
        context.fireChannelInactive()
    }

    /// A protocol violation: a stranger is refused; a daemon's connection is closed,
    /// and the reason is what its job resolves with.
    private func violation(_ reason: String, context: ChannelHandlerContext) {
        switch state {
        case .awaitingHello:
            reject(reason, context: context)
        case .accepted:
            // channelInactive reports the close (and this reason) to the dispatcher.
            if closeReason == nil { closeReason = reason }
            context.close(promise: nil)
        case .closed:
            break
        }
    }

    /// Refuses a connection that has not become a daemon, telling it why.
    private func reject(_ reason: String, context: ChannelHandlerContext) {
        guard case .awaitingHello = state else { return }
        state = .closed
        dispatcher.perform { state in
            state.connectionRejected(reason)
            return []
        }
        write(.refused(reason), context: context)
        context.close(promise: nil)
    }

    private func write(_ message: WireMessage, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(message.frame(allocator: context.channel.allocator)), promise: nil)
    }
}
