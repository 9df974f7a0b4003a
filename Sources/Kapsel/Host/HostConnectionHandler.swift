import KapselSharedMemory
import KapselWire
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// One connection on the host's socket, at the end of its pipeline (frame decoder →
/// this): it feeds what happens to a `HostConnectionState` and carries out the actions it
/// returns — frames through the connection's one `ConnectionWriter`, an admitted daemon's
/// answers to the dispatcher.
///
/// A local connection (a Unix socket) leaves NIO once its hello has proved the secret: a
/// `LocalDaemonConnection` takes it over, with the state machine, and reads it on a thread
/// of its own. Connections over TCP and TLS stay here for their whole life.
final class HostConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WireMessage

    /// How long a connection may take to present its hello.
    static let handshakeTimeout = TimeAmount.seconds(10)

    private let dispatcher: Dispatcher
    private let limits: WireLimits
    private let busyPoll: Duration
    private let heartbeatSettings: HeartbeatSettings?
    private let isLocal: Bool
    private var state: HostConnectionState
    private var writer: ConnectionWriter?
    private var handshakeTimer: Scheduled<Void>?
    private var heartbeat: HeartbeatMonitor?
    /// Set once a `LocalDaemonConnection` has taken the connection over.
    private var handedOver = false

    /// `heartbeat`: settings for connections over TCP, where a daemon can vanish
    /// without its connection closing.
    /// `isLocal`: the connection is local (a Unix socket): senders write its socket
    /// themselves (`SocketWriter`), and once authenticated it is read on a thread of its own,
    /// which stays awake for up to `busyPoll` between quick answers.
    init(
        dispatcher: Dispatcher, secret: HostSecret, limits: WireLimits = WireLimits(), heartbeat: HeartbeatSettings? = nil, isLocal: Bool = false,
        busyPoll: Duration = BusyWait.defaultBusyPoll
    ) {
        self.isLocal = isLocal
        self.busyPoll = busyPoll
        self.dispatcher = dispatcher
        self.limits = limits
        self.heartbeatSettings = heartbeat
        self.state = HostConnectionState(secret: secret)
    }

    func channelActive(context: ChannelHandlerContext) {
        writer = ConnectionWriter(channel: context.channel, direct: isLocal)
        run(state.connected(nonce: randomNonce()), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !handedOver else { return }
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
        guard !handedOver else {
            context.fireChannelReadComplete()
            return
        }
        // What waits for this daemon (jobs queued behind the ones it had) goes now.
        writer?.flush()
        writer?.releaseFlushes()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !handedOver else { return }
        run(state.failed(String(describing: error), isViolation: error is WireError || error is SharedMemoryError), context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writer?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !handedOver {
            run(state.closed(), context: context)
            writer?.connectionClosed()
        }
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
            case .admit(let hello, let hostProof) where isLocal:
                handOver(hello, hostProof: hostProof, context: context)
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
        switch dispatcher.admit(hello, hostProof: hostProof, writer: writer, limits: limits) {
        case .accepted(let slot, let instance): run(state.admitted(slot: slot, instance: instance), context: context)
        case .refused(let reason): run(state.refused(reason), context: context)
        }
    }

    /// A local daemon proved it knows the secret: its connection leaves NIO before anything
    /// more is written on it (the welcome, its first jobs), and a `LocalDaemonConnection`
    /// admits it and reads it from now on. NIO lets go of its descriptor; the socket stays
    /// open through the duplicate the new reader owns.
    private func handOver(_ hello: Hello, hostProof: [UInt8], context: ChannelHandlerContext) {
        guard let writer,
              let socket = try? context.channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self, { fcntl($0, F_DUPFD_CLOEXEC, 0) }),
              socket >= 0
        else {
            run(state.violation("cannot take the connection off the event loop: \(String(cString: strerror(errno)))"), context: context)
            return
        }
        handedOver = true
        // NIO's read burst ends here: nothing it held back waits for its end any more.
        writer.releaseFlushes()
        context.close(promise: nil)
        LocalDaemonConnection(state: state, descriptor: socket, writer: writer, dispatcher: dispatcher, limits: limits, busyPoll: busyPoll).admit(hello, hostProof: hostProof)
    }

    /// Hands an admitted daemon's message to the dispatcher, or to the carrier when it
    /// concerns shared memory only. Memory that cannot be received is a violation.
    private func deliver(_ message: WireMessage, slot: Int, instance: Int, context: ChannelHandlerContext) {
        guard let carrier = writer?.attachmentCarrier else { return }
        do {
            try dispatcher.deliver(CollectionOfOne(message), slot: slot, instance: instance, carrier: carrier)
        } catch {
            run(state.violation(String(describing: error)), context: context)
        }
    }
}
