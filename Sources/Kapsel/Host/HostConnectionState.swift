import KapselWire

/// The host's side of one connection, as a value: the mutual handshake, then an
/// admitted daemon's messages. It performs no I/O; each event returns the actions its
/// handler (`HostConnectionHandler`) carries out, in order.
///
/// Anything wrong (a malformed or oversized frame, a wrong secret, a message out of
/// turn, silence during the handshake) ends this connection only. A stranger is refused
/// with the reason; an admitted daemon that misbehaves has its connection closed, and
/// the reason is what the jobs it held resolve with.
struct HostConnectionState {
    /// What the handler does.
    enum Action: Equatable {
        /// Send a message of the handshake.
        case send(WireMessage)
        /// Start the time a new connection has to present its hello.
        case startHandshakeTimer
        /// Stop that time.
        case cancelHandshakeTimer
        /// The peer proved it knows the secret: ask the dispatcher to admit it (then call
        /// `admitted` or `refused`), welcoming it with `hostProof`.
        case admit(Hello, hostProof: [UInt8])
        /// Count a refused connection, with why.
        case recordRejection(String)
        /// Close the connection (after what was written before).
        case close
        /// Start heartbeats, on connections that have them.
        case startHeartbeat
        /// Stop them.
        case stopHeartbeat
        /// An admitted daemon's message, for the dispatcher or the connection's carrier.
        case deliver(WireMessage, slot: Int, instance: Int)
        /// Tell the dispatcher that an admitted daemon's connection closed, and why the
        /// host closed it (nil: the daemon did).
        case reportClosed(slot: Int, instance: Int, reason: String?)
    }

    /// Where the connection is.
    enum State: Equatable {
        case connecting
        case awaitingHello(nonce: [UInt8])
        case accepted(slot: Int, instance: Int)
        case closed
    }

    private let secret: HostSecret
    private(set) var state = State.connecting
    /// Why the host closed an admitted daemon's connection.
    private var closeReason: String?

    init(secret: HostSecret) {
        self.secret = secret
    }

    /// The connection is up: the peer is challenged to prove it knows the secret over `nonce`.
    mutating func connected(nonce: [UInt8]) -> [Action] {
        guard state == .connecting else { return [] }
        state = .awaitingHello(nonce: nonce)
        return [.send(.challenge(Challenge(nonce: nonce))), .startHandshakeTimer]
    }

    /// Where `message` goes when it is an admitted daemon's to deliver (the one
    /// `received` would answer with `.deliver`): its slot and instance; nil otherwise.
    /// The answer for every message on the hot path, without an action list.
    func delivery(of message: WireMessage) -> (slot: Int, instance: Int)? {
        guard case .accepted(let slot, let instance) = state, message.comesFromDaemons else { return nil }
        return (slot, instance)
    }

    /// A message arrived.
    mutating func received(_ message: WireMessage) -> [Action] {
        switch (state, message) {
        case (.awaitingHello(let nonce), .hello(let hello)):
            return authenticate(hello, hostNonce: nonce)
        case (.accepted, .heartbeat), (.closed, _):
            return []
        case (.accepted(let slot, let instance), _) where message.comesFromDaemons:
            return [.deliver(message, slot: slot, instance: instance)]
        default:
            return violation("unexpected \(message.kindName) message")
        }
    }

    private mutating func authenticate(_ hello: Hello, hostNonce: [UInt8]) -> [Action] {
        guard hello.protocolVersion == WireMessage.protocolVersion else {
            return reject("protocol version \(hello.protocolVersion) is not supported; this host speaks version \(WireMessage.protocolVersion)")
        }
        let expected = secret.daemonProof(hostNonce: hostNonce, daemonNonce: hello.nonce, token: hello.token)
        guard HostSecret.proofsMatch(hello.proof, expected) else {
            return reject("authentication failed: the daemon's secret does not match this host's")
        }
        return [.cancelHandshakeTimer, .admit(hello, hostProof: secret.hostProof(hostNonce: hostNonce, daemonNonce: hello.nonce))]
    }

    /// The dispatcher admitted the daemon into `slot`.
    mutating func admitted(slot: Int, instance: Int) -> [Action] {
        guard case .awaitingHello = state else { return [] }
        state = .accepted(slot: slot, instance: instance)
        return [.startHeartbeat]
    }

    /// The dispatcher refused the daemon.
    mutating func refused(_ reason: String) -> [Action] {
        reject(reason)
    }

    /// The handshake took longer than `limit`.
    mutating func handshakeTimedOut(after limit: String) -> [Action] {
        reject("no hello within \(limit)")
    }

    /// The daemon fell silent for longer than `timeout`.
    mutating func heartbeatLost(after timeout: Duration) -> [Action] {
        violation("no word from the daemon for \(timeout): its machine is gone or the link is cut")
    }

    /// The connection failed: with `isViolation`, what arrived was wrong (a bad frame,
    /// memory that cannot be mapped); otherwise the peer went away (a reset, a read
    /// error) and the connection just closes — for a local daemon its exit status then
    /// tells what happened.
    mutating func failed(_ description: String, isViolation: Bool) -> [Action] {
        if isViolation { return violation(description) }
        switch state {
        case .connecting, .awaitingHello: return reject(description)
        case .accepted: return [.close]
        case .closed: return []
        }
    }

    /// The connection closed.
    mutating func closed() -> [Action] {
        defer { state = .closed }
        switch state {
        case .accepted(let slot, let instance): return [.stopHeartbeat, .reportClosed(slot: slot, instance: instance, reason: closeReason)]
        case .awaitingHello: return [.cancelHandshakeTimer]
        case .connecting, .closed: return []
        }
    }

    /// A protocol violation: a stranger is refused; an admitted daemon's connection is
    /// closed, and `reason` is what its jobs resolve with.
    mutating func violation(_ reason: String) -> [Action] {
        switch state {
        case .connecting, .awaitingHello:
            return reject(reason)
        case .accepted:
            if closeReason == nil { closeReason = reason }
            return [.close]
        case .closed:
            return []
        }
    }

    /// Refuses a connection that has not become a daemon, telling it why.
    private mutating func reject(_ reason: String) -> [Action] {
        switch state {
        case .connecting, .awaitingHello:
            state = .closed
            return [.cancelHandshakeTimer, .recordRejection(reason), .send(.refused(reason)), .close]
        case .accepted, .closed:
            return []
        }
    }
}

extension WireMessage {
    /// Whether daemons send messages of this kind once admitted.
    fileprivate var comesFromDaemons: Bool {
        switch self {
        case .result, .callResult, .actorCount, .retiring, .attachmentChunk, .released, .releasesWanted, .forget: true
        case .challenge, .hello, .welcome, .refused, .run, .cancel, .shutdown, .call, .releaseActors, .heartbeat: false
        }
    }
}
