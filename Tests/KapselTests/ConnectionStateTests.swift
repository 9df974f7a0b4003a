import KapselWire
import NIOCore
import Testing
@testable import Kapsel

/// The connection state machines alone: what each side does in each state, and that
/// their hot-path shortcuts agree with the full answer.
@Suite("Connection state machines")
struct ConnectionStateTests {
    static let daemonMessages: [WireMessage] = [
        .result(RunResult(requestID: 1, outcome: .value(ByteBuffer()))), .callResult(RunResult(requestID: 2, outcome: .value(ByteBuffer()))),
        .actorCount(3), .retiring(exitCode: 80), .released(tokens: [1]), .releasesWanted, .forget(names: [2]),
        .attachmentChunk(AttachmentChunk(tag: 1, index: 0, byteCount: 1, offset: 0, bytes: ByteBuffer(bytes: [1]))),
    ]
    static let hostMessages: [WireMessage] = [
        .run(RunRequest(requestID: 1, jobType: "T", payload: ByteBuffer())), .cancel(requestID: 1), .released(tokens: [1]), .releasesWanted,
        .forget(names: [1]), .releaseActors([]), .call(CallRequest(callID: 1, kind: .invoke, actor: WireActorID(creator: 0, instance: 0, serial: 1), name: "f", payload: ByteBuffer())),
        .attachmentChunk(AttachmentChunk(tag: 1, index: 0, byteCount: 1, offset: 0, bytes: ByteBuffer(bytes: [1]))),
    ]
    static let everything: [WireMessage] = daemonMessages + hostMessages + [
        .challenge(Challenge(nonce: [1])), .hello(Hello(pid: 1, token: "t", nonce: [1], proof: [2])),
        .welcome(Welcome(daemonIndex: 0, instance: 1, proof: [])), .refused("no"), .shutdown, .heartbeat,
    ]

    /// A host connection that admitted a daemon into slot 2.
    func admittedHost() -> HostConnectionState {
        var state = HostConnectionState(secret: .random())
        _ = state.connected(nonce: randomNonce())
        _ = state.admitted(slot: 2, instance: 5)
        return state
    }

    @Test func theHostsShortcutAgreesWithItsFullAnswerForEveryMessage() {
        for message in Self.everything {
            var state = admittedHost()
            let shortcut = state.delivery(of: message)
            let full = state.received(message)
            if let (slot, instance) = shortcut {
                #expect(full == [.deliver(message, slot: 2, instance: 5)] && slot == 2 && instance == 5, "\(message.kindName)")
            } else {
                #expect(!full.contains { if case .deliver = $0 { true } else { false } }, "\(message.kindName)")
            }
        }
        var stranger = HostConnectionState(secret: .random())
        _ = stranger.connected(nonce: randomNonce())
        #expect(Self.everything.allSatisfy { stranger.delivery(of: $0) == nil }, "nothing is delivered before admission")
    }

    @Test func aDaemonMessageOutOfTurnClosesAnAdmittedConnectionWithTheReason() {
        var state = admittedHost()
        #expect(state.received(.run(RunRequest(requestID: 1, jobType: "T", payload: ByteBuffer()))) == [.close])
        #expect(state.closed() == [.stopHeartbeat, .reportClosed(slot: 2, instance: 5, reason: "unexpected run message")])
        #expect(state.received(.heartbeat).isEmpty && state.violation("again").isEmpty, "a closed connection does nothing more")
    }

    @Test func aStrangerIsRefusedOnceAndCounted() {
        var state = HostConnectionState(secret: .random())
        _ = state.connected(nonce: randomNonce())
        let actions = state.failed("bad frame", isViolation: true)
        #expect(actions == [.cancelHandshakeTimer, .recordRejection("bad frame"), .send(.refused("bad frame")), .close])
        #expect(state.handshakeTimedOut(after: "10 s").isEmpty)
        #expect(state.closed().isEmpty)
    }

    @Test func aResetOfAnAdmittedConnectionIsNotAViolation() {
        var state = admittedHost()
        #expect(state.failed("connection reset", isViolation: false) == [.close])
        #expect(state.closed() == [.stopHeartbeat, .reportClosed(slot: 2, instance: 5, reason: nil)])
    }

    /// A daemon past its welcome.
    func readyDaemon() -> DaemonConnectionState {
        let secret = HostSecret.random()
        var state = DaemonConnectionState(secret: secret, token: "t", pid: 7, makeNonce: { [9, 9] })
        let hostNonce: [UInt8] = [1, 2]
        _ = state.received(.challenge(Challenge(nonce: hostNonce)))
        _ = state.received(.welcome(Welcome(daemonIndex: 0, instance: 1, proof: secret.hostProof(hostNonce: hostNonce, daemonNonce: [9, 9]))))
        return state
    }

    @Test func theDaemonsShortcutAgreesWithItsFullAnswerForEveryMessage() {
        #expect(readyDaemon().state == .ready)
        for message in Self.everything {
            var state = readyDaemon()
            let shortcut = state.delivers(message)
            let full = state.received(message)
            #expect(shortcut == (full == [.deliver(message)]), "\(message.kindName)")
        }
        let fresh = DaemonConnectionState(secret: .random(), token: "t", pid: 7)
        #expect(Self.everything.allSatisfy { !fresh.delivers($0) }, "nothing is delivered before the welcome")
    }

    @Test func aRetiringDaemonExitsWithItsRetirementCodeOnShutdown() {
        var state = readyDaemon()
        state.retiring(.maxJobs)
        #expect(state.received(.shutdown) == [.exit(.maxJobs, message: nil)])
        #expect(state.closed().isEmpty, "the process is ending: no second ending")
    }

    @Test func howTheDaemonsConnectionFailsDecidesHowItEnds() {
        var waiting = DaemonConnectionState(secret: .random(), token: "t", pid: 7)
        #expect(waiting.failed(.tls("bad certificate")) == [.exit(.refused, message: "the TLS handshake with the host failed: bad certificate")])
        var pinned = DaemonConnectionState(secret: .random(), token: "t", pid: 7)
        #expect(pinned.failed(.certificateMismatch("the host presented AB")) == [.exit(.refused, message: "the host presented AB; refusing to connect")])
        var ready = readyDaemon()
        #expect(ready.failed(.io("reset")) == [.hostLost("the connection to the host failed: reset")])
        var silent = readyDaemon()
        #expect(silent.heartbeatLost(after: .seconds(5)) == [.hostLost("no word from the host for 5.0 seconds; it is gone or cut off")])
        #expect(silent.closed().isEmpty)
    }
}
