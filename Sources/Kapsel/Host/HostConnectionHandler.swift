import KapselSharedMemory
import KapselWire
import NIOCore

/// One connection on the host's socket, at the end of its pipeline (frame decoder →
/// frame encoder → this): it feeds what happens to a `HostConnectionState` and carries
/// out the actions it returns — frames through the connection's one `ConnectionWriter`,
/// an admitted daemon's answers to the dispatcher.
final class HostConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WireMessage

    /// How long a connection may take to present its hello.
    static let handshakeTimeout = TimeAmount.seconds(10)

    private let dispatcher: Dispatcher
    private let limits: WireLimits
    private let heartbeatSettings: HeartbeatSettings?
    private let directWrites: Bool
    private var state: HostConnectionState
    private var writer: ConnectionWriter?
    private var handshakeTimer: Scheduled<Void>?
    private var heartbeat: HeartbeatMonitor?

    /// `heartbeat`: settings for connections over TCP, where a daemon can vanish
    /// without its connection closing.
    /// `directWrites`: the connection is local (a Unix socket), and senders write its socket
    /// themselves (`DirectSocketWriter`).
    init(dispatcher: Dispatcher, secret: HostSecret, limits: WireLimits = WireLimits(), heartbeat: HeartbeatSettings? = nil, directWrites: Bool = false) {
        self.directWrites = directWrites
        self.dispatcher = dispatcher
        self.limits = limits
        self.heartbeatSettings = heartbeat
        self.state = HostConnectionState(secret: secret)
    }

    func channelActive(context: ChannelHandlerContext) {
        writer = ConnectionWriter(channel: context.channel, direct: directWrites)
        run(state.connected(nonce: randomNonce()), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        heartbeat?.heard()
        writer?.holdFlushes()
        let message = unwrapInboundIn(data)
        if let (slot, instance) = state.delivery(of: message) {
            deliver(message, slot: slot, instance: instance, context: context)
        } else {
            run(state.received(message), context: context)
        }
    }

    /// What was written while the burst was read (the next jobs for the daemons whose
    /// results came in) goes out together.
    func channelReadComplete(context: ChannelHandlerContext) {
        writer?.releaseFlushes()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        run(state.failed(String(describing: error), isViolation: error is WireError || error is SharedMemoryError), context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writer?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(state.closed(), context: context)
        writer?.connectionClosed()
        context.fireChannelInactive()
    }

    private func run(_ actions: [HostConnectionState.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .send(let message):
                writer?.send(.plain(message))
            case .startHandshakeTimer:
                let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
                handshakeTimer = context.eventLoop.scheduleTask(in: Self.handshakeTimeout) {
                    let (handler, context) = bound.value
                    handler.run(handler.state.handshakeTimedOut(after: "\(Self.handshakeTimeout)"), context: context)
                }
            case .cancelHandshakeTimer:
                handshakeTimer?.cancel()
                handshakeTimer = nil
            case .admit(let hello, let hostProof):
                admit(hello, hostProof: hostProof, context: context)
            case .recordRejection(let reason):
                let address = writer?.peerAddress
                dispatcher.perform { $0.connectionRejected(reason, address: address) }
            case .close:
                // What was written in this read burst (a refusal, say) goes out first.
                writer?.releaseFlushes()
                context.close(promise: nil)
            case .startHeartbeat:
                guard let heartbeatSettings, let writer else { break }
                let monitor = HeartbeatMonitor(heartbeatSettings)
                heartbeat = monitor
                let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
                monitor.start(on: context.eventLoop, beat: { writer.send(.plain(.heartbeat)) }, onSilence: {
                    let (handler, context) = bound.value
                    handler.run(handler.state.heartbeatLost(after: heartbeatSettings.timeout), context: context)
                })
            case .stopHeartbeat:
                heartbeat?.stop()
            case .deliver(let message, let slot, let instance):
                deliver(message, slot: slot, instance: instance, context: context)
            case .reportClosed(let slot, let instance, let reason):
                dispatcher.perform { $0.connectionClosed(slot: slot, instance: instance, reason: reason) }
            }
        }
    }

    /// Asks the dispatcher to admit an authenticated daemon; on acceptance its
    /// connection gets the carrier for its shared memory and the dispatcher's welcome.
    private func admit(_ hello: Hello, hostProof: [UInt8], context: ChannelHandlerContext) {
        guard let writer else { return }
        let limits = self.limits
        var admission = DispatcherState.Admission.refused("not admitted")
        dispatcher.perform { state in
            let (decision, actions) = state.daemonAuthenticated(token: hello.token, pid: hello.pid, batchJob: hello.batchJob.isEmpty ? nil : hello.batchJob, connect: { descriptors in
                writer.install(makeCarrier(writer: writer, descriptors: descriptors, limits: limits))
                return writer
            }, welcome: { index, instance in
                .welcome(Welcome(daemonIndex: UInt32(index), instance: UInt32(instance), proof: hostProof))
            })
            admission = decision
            return actions
        }
        switch admission {
        case .accepted(let slot, let instance): run(state.admitted(slot: slot, instance: instance), context: context)
        case .refused(let reason): run(state.refused(reason), context: context)
        }
    }

    /// Hands an admitted daemon's message to the dispatcher, or to the carrier when it
    /// concerns shared memory only. Memory that cannot be received is a violation.
    private func deliver(_ message: WireMessage, slot: Int, instance: Int, context: ChannelHandlerContext) {
        guard let carrier = writer?.attachmentCarrier else { return }
        do {
            switch message {
            case .result(let result):
                let completion = Completion(result.outcome, attachments: try carrier.receiveAttachments(result.attachments, tag: result.requestID))
                let now = ContinuousClock.now
                dispatcher.perform { $0.jobFinished(slot: slot, instance: instance, requestID: result.requestID, completion: completion, at: now) }
            case .callResult(let result):
                let completion = Completion(result.outcome, attachments: try carrier.receiveAttachments(result.attachments, tag: result.requestID))
                let now = ContinuousClock.now
                dispatcher.perform { $0.callFinished(slot: slot, instance: instance, requestID: result.requestID, completion: completion, at: now) }
            case .actorCount(let count):
                dispatcher.perform { state in
                    state.actorCountReported(slot: slot, instance: instance, count: Int(count))
                    return []
                }
            case .retiring(let exitCode):
                dispatcher.perform { $0.daemonRetiring(slot: slot, instance: instance, exitCode: exitCode) }
            case .attachmentChunk(let chunk):
                try carrier.received(chunk)
            case .released(let tokens):
                carrier.peerReleased(tokens)
            case .releasesWanted:
                carrier.peerWantsReleases()
            case .forget(let names):
                carrier.peerForgot(names)
            default:
                break
            }
        } catch {
            run(state.violation("cannot receive the shared memory of a \(message.kindName) message: \(error)"), context: context)
        }
    }
}
