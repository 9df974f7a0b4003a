import KapselWire
import NIOCore
import NIOEmbedded
import Synchronization
import Testing
@testable import Kapsel

/// Both ends of the handshake and the bad peers each must survive, driven through the
/// real pipelines (frame decoder → frame encoder → connection handler) on embedded
/// channels: no sockets, no processes.
@Suite("Handshake and bad peers, on embedded channels")
struct HandshakeTests {
    /// A launcher that starts nothing: the slots wait for daemons with their tokens.
    struct NoLauncher: SlotLauncher {
        func launch(slot: Int, instance: Int, token: String, dispatcher: Dispatcher) {}
    }

    /// A host's connection handler in its pipeline, with a dispatcher of one slot whose
    /// launch token is "t".
    struct Host {
        let channel: EmbeddedChannel
        let dispatcher: Dispatcher
        let secret = HostSecret.random()

        init() throws {
            let loop = EmbeddedEventLoop()
            dispatcher = Dispatcher(
                state: DispatcherState(slotCount: 1, mode: .dispatcher, cancellationGrace: .milliseconds(50), maxStartFailures: 3, launchesProcesses: false) { "t" },
                timerLoop: loop
            )
            dispatcher.start(launching: NoLauncher())
            channel = EmbeddedChannel(loop: loop)
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(FrameDecoder(limits: WireLimits(), handshakeFrames: 1)),
                HostConnectionHandler(dispatcher: dispatcher, secret: secret),
            ])
            try channel.connect(to: SocketAddress(unixDomainSocketPath: "/kapsel-test")).wait()
        }

        /// The challenge the host opened with.
        func challenge() throws -> Challenge {
            guard case .challenge(let challenge)? = try next() else { throw HandshakeFailure("the host did not open with a challenge") }
            return challenge
        }

        /// Feeds raw bytes to the host.
        func send(_ bytes: [UInt8]) {
            _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        }

        func send(_ message: WireMessage) {
            _ = try? channel.writeInbound(message.frame())
        }

        /// A hello with this host's secret (or `secret`) answering `challenge`.
        func hello(to challenge: Challenge, token: String = "t", secret: HostSecret? = nil) -> (Hello, [UInt8]) {
            let nonce = randomNonce()
            let proof = (secret ?? self.secret).daemonProof(hostNonce: challenge.nonce, daemonNonce: nonce, token: token)
            return (Hello(pid: 7, token: token, nonce: nonce, proof: proof), nonce)
        }

        /// The next message the host wrote.
        func next() throws -> WireMessage? {
            try HandshakeTests.nextMessage(from: channel)
        }

        var status: DaemonsStatus { dispatcher.inspect { $0.status(url: "test") } }
    }

    static func nextMessage(from channel: EmbeddedChannel) throws -> WireMessage? {
        var bytes = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&part) }
        guard bytes.readableBytes > 0 else { return nil }
        var decoder = FrameDecoder(limits: WireLimits(), handshakeFrames: 0)
        let message = try decoder.nextMessage(from: &bytes)
        // Put back what follows the first message, for the next call.
        if bytes.readableBytes > 0 { try channel.writeOutbound(bytes) }
        return message
    }

    @Test func aHostOpensWithAChallengeAndWelcomesADaemonThatProvesTheSecret() throws {
        let host = try Host()
        let challenge = try host.challenge()
        #expect(challenge.nonce.count == 32 && challenge.protocolVersion == WireMessage.protocolVersion)
        let (hello, nonce) = host.hello(to: challenge)
        host.send(.hello(hello))
        guard case .welcome(let welcome)? = try host.next() else {
            Issue.record("no welcome")
            return
        }
        #expect(welcome.daemonIndex == 0 && welcome.instance == 1)
        #expect(HostSecret.proofsMatch(welcome.proof, host.secret.hostProof(hostNonce: challenge.nonce, daemonNonce: nonce)))
        #expect(host.status.connections == 1 && host.status.rejectedConnections == 0)
        #expect(host.channel.isActive)
    }

    @Test func aMalformedFrameIsRefusedWithTheReason() throws {
        let host = try Host()
        _ = try host.challenge()
        host.send([0, 0, 0, 1, 0xEE])
        guard case .refused(let reason)? = try host.next() else {
            Issue.record("no refusal")
            return
        }
        #expect(reason.contains("unknown message kind 238"))
        #expect(!host.channel.isActive)
        #expect(host.status.rejectedConnections == 1)
        #expect(host.status.lastRejection?.contains("unknown message kind 238") == true)
    }

    @Test func anOversizedLengthPrefixIsRefusedBeforeAnythingIsBuffered() throws {
        let host = try Host()
        _ = try host.challenge()
        host.send([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
        guard case .refused(let reason)? = try host.next() else {
            Issue.record("no refusal")
            return
        }
        #expect(reason.contains("4294967295 bytes exceeds the limit of 4096 bytes"))
        #expect(!host.channel.isActive)
    }

    @Test func aHelloWithTheWrongSecretIsRefused() throws {
        let host = try Host()
        let (hello, _) = host.hello(to: try host.challenge(), secret: .random())
        host.send(.hello(hello))
        guard case .refused(let reason)? = try host.next() else {
            Issue.record("no refusal")
            return
        }
        #expect(reason.contains("authentication failed"))
        #expect(host.status.connections == 0 && host.status.rejectedConnections == 1)
    }

    @Test func aHelloOfAnotherProtocolVersionIsRefused() throws {
        let host = try Host()
        var (hello, _) = host.hello(to: try host.challenge())
        hello.protocolVersion = 99
        host.send(.hello(hello))
        guard case .refused(let reason)? = try host.next() else {
            Issue.record("no refusal")
            return
        }
        #expect(reason.contains("protocol version 99 is not supported"))
    }

    @Test func aDaemonWithTheSecretButAnUnknownTokenIsRefused() throws {
        let host = try Host()
        let (hello, _) = host.hello(to: try host.challenge(), token: "not-ours")
        host.send(.hello(hello))
        guard case .refused(let reason)? = try host.next() else {
            Issue.record("no refusal")
            return
        }
        #expect(reason.contains("unknown launch token"))
    }

    @Test func aPeerSilentThroughTheHandshakeIsRefusedInTime() throws {
        let host = try Host()
        _ = try host.challenge()
        host.channel.embeddedEventLoop.advanceTime(by: HostConnectionHandler.handshakeTimeout - .milliseconds(1))
        #expect(host.channel.isActive)
        host.channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        guard case .refused(let reason)? = try host.next() else {
            Issue.record("no refusal")
            return
        }
        #expect(reason.contains("no hello within"))
        #expect(!host.channel.isActive)
    }

    /// An admitted daemon that sends what only a host sends is cut off; the reason is
    /// what the job it held resolves with.
    @Test func anAdmittedDaemonThatBreaksTheProtocolIsClosedAndItsJobSaysWhy() async throws {
        let host = try Host()
        let (hello, _) = host.hello(to: try host.challenge())
        host.send(.hello(hello))
        _ = try host.next()
        let resolver = FakeResolver()
        host.dispatcher.perform { $0.submit(id: 1, jobType: "T", envelope: Envelope(payload: ByteBuffer()), resolver: resolver, timeout: nil, retries: 0) }
        guard case .run(let request)? = try host.next() else {
            Issue.record("the job was not sent")
            return
        }
        #expect(request.requestID == 1)
        host.send(.shutdown)
        #expect(!host.channel.isActive)
        #expect(resolver.errorCode == .connectionLost)
        #expect(resolver.error?.message.contains("unexpected shutdown message") == true)
    }

    // MARK: The daemon's end

    /// A daemon's connection handler in its pipeline, recording how it would end the process.
    struct Daemon {
        /// How the daemon ended, as its handler reported it.
        final class Ending: Sendable {
            let exits = Mutex<[(DaemonExitCode, String?)]>([])
            let losses = Mutex<[String]>([])
        }

        let channel = EmbeddedChannel()
        let secret = HostSecret.random()
        let ending = Ending()

        init() throws {
            let configuration = DaemonConfiguration(url: "unix:///kapsel-test", secret: secret, token: "t")
            let ending = self.ending
            let handler = DaemonConnectionHandler(
                configuration: configuration, registry: DaemonRegistry(jobs: [], actors: []), descriptors: nil,
                onExit: { code, message in ending.exits.withLock { $0.append((code, message)) } },
                onHostLost: { reason in ending.losses.withLock { $0.append(reason) } }
            )
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(FrameDecoder(limits: WireLimits(), handshakeFrames: 2)), handler,
            ])
            try channel.connect(to: SocketAddress(unixDomainSocketPath: "/kapsel-test")).wait()
        }

        func send(_ bytes: [UInt8]) {
            _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        }

        func send(_ message: WireMessage) {
            _ = try? channel.writeInbound(message.frame())
        }

        func next() throws -> WireMessage? {
            try HandshakeTests.nextMessage(from: channel)
        }

        /// How the daemon ended, if it did.
        var exit: (code: DaemonExitCode, message: String)? {
            ending.exits.withLock { $0.first.map { ($0.0, $0.1 ?? "") } }
        }

        /// Completes the handshake as an honest host; returns the host's nonce.
        func welcome() throws {
            let nonce = randomNonce()
            send(.challenge(Challenge(nonce: nonce)))
            guard case .hello(let hello)? = try next() else { throw HandshakeFailure("no hello") }
            send(.welcome(Welcome(daemonIndex: 0, instance: 1, proof: secret.hostProof(hostNonce: nonce, daemonNonce: hello.nonce))))
        }
    }

    @Test func aDaemonAnswersTheChallengeWithAProofOfTheSecretAndItsToken() throws {
        let daemon = try Daemon()
        let nonce = randomNonce()
        daemon.send(.challenge(Challenge(nonce: nonce)))
        guard case .hello(let hello)? = try daemon.next() else {
            Issue.record("no hello")
            return
        }
        #expect(hello.token == "t")
        #expect(HostSecret.proofsMatch(hello.proof, daemon.secret.daemonProof(hostNonce: nonce, daemonNonce: hello.nonce, token: "t")))
        #expect(daemon.exit == nil)
    }

    @Test func aDaemonLeavesAHostThatSendsGarbage() throws {
        let daemon = try Daemon()
        daemon.send([0, 0, 0, 3, 99, 9, 9])
        #expect(daemon.exit?.code == .protocolError)
        #expect(daemon.exit?.message.contains("unknown message kind 99") == true)
        #expect(!daemon.channel.isActive)
    }

    @Test func aDaemonLeavesAHostThatCannotProveTheSecret() throws {
        let daemon = try Daemon()
        daemon.send(.challenge(Challenge(nonce: randomNonce())))
        _ = try daemon.next()
        daemon.send(.welcome(Welcome(daemonIndex: 0, instance: 1, proof: Array(repeating: 0, count: 32))))
        #expect(daemon.exit?.code == .refused)
        #expect(daemon.exit?.message.contains("the host could not prove it knows the secret") == true)
    }

    @Test func aDaemonLeavesAHostOfAnotherProtocolVersion() throws {
        let daemon = try Daemon()
        daemon.send(.challenge(Challenge(protocolVersion: 99, nonce: randomNonce())))
        #expect(daemon.exit?.code == .protocolError)
        #expect(daemon.exit?.message.contains("the host speaks protocol version 99") == true)
    }

    @Test func aRefusedDaemonSaysWhy() throws {
        let daemon = try Daemon()
        daemon.send(.refused("authentication failed: no"))
        #expect(daemon.exit?.code == .refused)
        #expect(daemon.exit?.message.contains("the host refused this daemon: authentication failed: no") == true)
    }

    @Test func aWelcomedDaemonRefusesMessagesOnlyDaemonsSendAndStopsOnShutdown() throws {
        let first = try Daemon()
        try first.welcome()
        #expect(first.exit == nil)
        first.send(.result(RunResult(requestID: 1, outcome: .value(ByteBuffer()))))
        #expect(first.exit?.code == .protocolError)
        #expect(first.exit?.message.contains("unexpected result message from the host") == true)

        let second = try Daemon()
        try second.welcome()
        second.send(.heartbeat)
        second.send(.shutdown)
        #expect(second.exit?.code == .stopped)
    }

    @Test func aDaemonWhoseHostClosesTheConnectionLosesItsHost() throws {
        let daemon = try Daemon()
        try daemon.welcome()
        daemon.channel.pipeline.fireChannelInactive()
        #expect(daemon.ending.losses.withLock { $0 } == ["the connection to the host closed"])
        #expect(daemon.exit == nil)
    }

    @Test func aRunBeforeTheWelcomeIsAViolation() throws {
        let daemon = try Daemon()
        daemon.send(.run(RunRequest(requestID: 1, jobType: "T", payload: ByteBuffer())))
        #expect(daemon.exit?.code == .protocolError)
        #expect(daemon.exit?.message.contains("unexpected run message from the host") == true)
    }
}

private struct HandshakeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
