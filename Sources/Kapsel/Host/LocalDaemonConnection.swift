import CKapselShim
import KapselSharedMemory
import KapselWire
import Synchronization

/// A local daemon's connection from the moment its hello proved it knows the secret:
/// admitted (or refused) by the dispatcher, then read by a thread of its own
/// (`SocketReader`) and written by whichever thread sends (`SocketWriter`).
///
/// NIO accepts the connection and runs the handshake up to the hello, where strangers are
/// refused with bounded resources; from then on the connection leaves the event loop, so
/// a daemon's answer reaches the dispatcher with one wake-up of one thread. The same
/// `HostConnectionState` goes on deciding what each event means; this object carries out
/// its actions as `HostConnectionHandler` does on NIO's connections.
final class LocalDaemonConnection: Sendable {
    private let state: Mutex<HostConnectionState>
    private let writer: ConnectionWriter
    private let reader: SocketReader
    private let dispatcher: Dispatcher
    private let limits: WireLimits

    /// Takes over a connection whose handshake is at `state`, read from `descriptor`
    /// (blocking; owned from now on) and written by `writer`; its reader stays awake for up
    /// to `busyPoll` between quick answers.
    init(state: HostConnectionState, descriptor: Int32, writer: ConnectionWriter, dispatcher: Dispatcher, limits: WireLimits, busyPoll: Duration) {
        self.state = Mutex(state)
        self.writer = writer
        self.reader = SocketReader(descriptor: descriptor, limits: limits, handshakeFrames: 0, busyPoll: busyPoll)
        self.dispatcher = dispatcher
        self.limits = limits
    }

    /// Asks the dispatcher to admit the daemon that sent `hello` (welcoming it with
    /// `hostProof`), then reads the connection until it ends. A refused daemon is told why
    /// and its connection closed.
    func admit(_ hello: Hello, hostProof: [UInt8]) {
        writer.onFailure { [self] error in
            run(state.withLock { $0.violation(String(describing: error)) })
        }
        switch dispatcher.admit(hello, hostProof: hostProof, writer: writer, limits: limits) {
        case .accepted(let slot, let instance): run(state.withLock { $0.admitted(slot: slot, instance: instance) })
        case .refused(let reason): run(state.withLock { $0.refused(reason) })
        }
        reader.start(received: { [self] messages in received(messages) }, ended: { [self] ending in ended(ending) })
    }

    /// A burst of messages: the daemon's answers in it reach the dispatcher in one event
    /// (what that makes the host send, the next jobs for them, goes out in one write).
    private func received(_ messages: [WireMessage]) {
        var start = messages.startIndex
        while start < messages.endIndex {
            guard let (slot, instance) = state.withLock({ $0.delivery(of: messages[start]) }) else {
                run(state.withLock { $0.received(messages[start]) })
                start += 1
                continue
            }
            // The run of messages from here that are the admitted daemon's to deliver.
            var end = start + 1
            while end < messages.endIndex, state.withLock({ $0.delivery(of: messages[end]) }) != nil { end += 1 }
            deliver(messages[start..<end], slot: slot, instance: instance)
            start = end
        }
        // What waits for this daemon (jobs queued behind the ones it had) goes now.
        writer.flush()
    }

    private func deliver(_ messages: ArraySlice<WireMessage>, slot: Int, instance: Int) {
        guard let carrier = writer.attachmentCarrier else { return }
        do {
            try dispatcher.deliver(messages, slot: slot, instance: instance, carrier: carrier)
        } catch {
            run(state.withLock { $0.violation(String(describing: error)) })
        }
    }

    /// The reader ended: the dispatcher learns the connection closed (and why, if the host closed it).
    private func ended(_ ending: SocketReader.Ending) {
        if let error = ending {
            run(state.withLock { $0.failed(String(describing: error), isViolation: error is WireError) })
        }
        run(state.withLock { $0.closed() })
        writer.connectionClosed()
    }

    private func run(_ actions: [HostConnectionState.Action]) {
        for action in actions {
            switch action {
            case .send(let message):
                writer.send(.plain(message))
            case .recordRejection(let reason):
                let address = writer.peerAddress
                dispatcher.perform { $0.connectionRejected(reason, address: address) }
            case .close:
                // What was written before (a refusal, say) goes first; the reader then ends.
                writer.releaseFlushes()
                writer.close()
                reader.shutDown()
            case .deliver(let message, let slot, let instance):
                deliver([message], slot: slot, instance: instance)
            case .reportClosed(let slot, let instance, let reason):
                dispatcher.perform { $0.connectionClosed(slot: slot, instance: instance, reason: reason) }
            case .startHandshakeTimer, .cancelHandshakeTimer, .admit, .startHeartbeat, .stopHeartbeat:
                // The handshake's timer ended with NIO's part; local connections have no heartbeats.
                break
            }
        }
    }
}
