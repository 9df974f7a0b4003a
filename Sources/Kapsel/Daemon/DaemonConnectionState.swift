import KapselWire

/// The daemon's side of its host connection, as a value: answer the host's challenge,
/// check the host's proof, then take its requests until it says stop or goes away. It
/// performs no I/O; each event returns the actions its handler
/// (`DaemonConnectionHandler`) carries out, in order — ending the process included.
struct DaemonConnectionState {
    /// What the handler does.
    enum Action: Equatable {
        /// Send a message of the handshake.
        case send(WireMessage)
        /// The host proved it knows the secret: set up the work (jobs, actors), heartbeats
        /// and the lifetime, for the place `welcome` gives.
        case begin(Welcome)
        /// A request of the host, for the job runner, the actors or the carrier.
        case deliver(WireMessage)
        /// End the process with `code`, saying `message` (if any) on standard error.
        case exit(DaemonExitCode, message: String?)
        /// The connection to the host is over (`reason`): stop the work, close, and exit
        /// or wait for the host to come back.
        case hostLost(String)
    }

    /// Where the connection is.
    enum State: Equatable {
        case awaitingChallenge
        case awaitingWelcome(hostNonce: [UInt8], daemonNonce: [UInt8])
        case ready
        case finished
    }

    /// How the connection failed, as the handler tells it.
    enum Failure: Equatable {
        /// The host's TLS certificate was not the pinned one (what was found instead).
        case certificateMismatch(String)
        /// The TLS handshake failed.
        case tls(String)
        /// Reading or writing failed (a reset, a broken pipe).
        case io(String)
        /// Anything else (a malformed frame).
        case other(String)
    }

    private let secret: HostSecret
    private let token: String
    private let pid: Int32
    private let batchJob: String?
    private let makeNonce: @Sendable () -> [UInt8]
    private(set) var state = State.awaitingChallenge
    /// Set when the daemon told the host it retires: the exit code of its shutdown.
    private var retirement: DaemonExitCode?

    /// `token` is the launch token the host issued; `pid` this process's and `batchJob`
    /// the resource manager's job it runs in, for the hello.
    init(secret: HostSecret, token: String, pid: Int32, batchJob: String? = nil, makeNonce: @escaping @Sendable () -> [UInt8] = randomNonce) {
        self.secret = secret
        self.token = token
        self.pid = pid
        self.batchJob = batchJob
        self.makeNonce = makeNonce
    }

    /// Whether `message` is a request to deliver (the one `received` would answer with
    /// `.deliver`): the answer for every message on the hot path, without an action list.
    func delivers(_ message: WireMessage) -> Bool {
        guard case .ready = state else { return false }
        return message.comesFromHosts
    }

    /// A message arrived from the host.
    mutating func received(_ message: WireMessage) -> [Action] {
        switch (state, message) {
        case (.awaitingChallenge, .challenge(let challenge)):
            guard challenge.protocolVersion == WireMessage.protocolVersion else {
                return finish(.protocolError, "the host speaks protocol version \(challenge.protocolVersion), this daemon \(WireMessage.protocolVersion)")
            }
            let nonce = makeNonce()
            let proof = secret.daemonProof(hostNonce: challenge.nonce, daemonNonce: nonce, token: token)
            state = .awaitingWelcome(hostNonce: challenge.nonce, daemonNonce: nonce)
            return [.send(.hello(Hello(pid: pid, token: token, nonce: nonce, proof: proof, batchJob: batchJob ?? "")))]
        case (.awaitingWelcome(let hostNonce, let daemonNonce), .welcome(let welcome)):
            guard HostSecret.proofsMatch(welcome.proof, secret.hostProof(hostNonce: hostNonce, daemonNonce: daemonNonce)) else {
                return finish(.refused, "the host could not prove it knows the secret; refusing to work for it")
            }
            state = .ready
            return [.begin(welcome)]
        case (_, .heartbeat), (.finished, _):
            // A heartbeat is harmless in any state (the host's start once it has admitted
            // this daemon); after the connection was given up, frames still decoded from
            // what it had read are dropped.
            return []
        case (_, .refused(let reason)):
            return finish(.refused, "the host refused this daemon: \(reason)")
        case (.ready, .shutdown):
            return finish(retirement ?? .stopped, nil)
        case (.ready, _) where message.comesFromHosts:
            return [.deliver(message)]
        default:
            return violation("unexpected \(message.kindName) message from the host")
        }
    }

    /// The daemon told the host it retires with `code`.
    mutating func retiring(_ code: DaemonExitCode) {
        retirement = code
    }

    /// The host broke the protocol (`reason`): the daemon leaves it.
    mutating func violation(_ reason: String) -> [Action] {
        finish(.protocolError, reason)
    }

    /// The connection failed.
    mutating func failed(_ failure: Failure) -> [Action] {
        switch (state, failure) {
        case (.finished, _):
            return []
        case (_, .certificateMismatch(let found)):
            return finish(.refused, "\(found); refusing to connect")
        case (.awaitingChallenge, .tls(let description)):
            return finish(.refused, "the TLS handshake with the host failed: \(description)")
        case (.ready, .io(let description)):
            return hostLost("the connection to the host failed: \(description)")
        case (_, .tls(let description)), (_, .io(let description)), (_, .other(let description)):
            return finish(.protocolError, "the connection to the host failed: \(description)")
        }
    }

    /// The host fell silent for longer than `timeout`.
    mutating func heartbeatLost(after timeout: Duration) -> [Action] {
        hostLost("no word from the host for \(timeout); it is gone or cut off")
    }

    /// The connection closed.
    mutating func closed() -> [Action] {
        hostLost("the connection to the host closed")
    }

    private mutating func hostLost(_ reason: String) -> [Action] {
        guard state != .finished else { return [] }
        state = .finished
        return [.hostLost(reason)]
    }

    private mutating func finish(_ code: DaemonExitCode, _ message: String?) -> [Action] {
        state = .finished
        return [.exit(code, message: message)]
    }
}

extension WireMessage {
    /// Whether a host sends messages of this kind to a daemon it has welcomed.
    fileprivate var comesFromHosts: Bool {
        switch self {
        case .run, .call, .cancel, .released, .releasesWanted, .forget, .releaseActors, .attachmentChunk: true
        case .challenge, .hello, .welcome, .refused, .result, .shutdown, .callResult, .actorCount, .heartbeat, .retiring: false
        }
    }
}
