// libFuzzer target: the handshake of both sides, from a peer's bytes through the frame
// decoder into the host's and the daemon's connection state machines. Nothing may
// crash; a peer that does not prove the secret is never admitted (the host) or obeyed
// (the daemon); nothing is delivered before admission or after the connection ended.
//
// The first byte picks the side and whether the harness signs the peer's proof with the
// real secret (so the fuzzer also reaches what follows a good handshake).
import CFuzzDriver
import FuzzSupport
@testable import Kapsel
import KapselWire
import NIOCore

private let secret = HandshakeFixture.secret
private let hostNonce = HandshakeFixture.hostNonce
private let daemonNonce = HandshakeFixture.daemonNonce

// SwiftPM links a debug executable's `main` to `<module>_main`; libFuzzer's own `main`
// takes precedence, and this one would do the same.
@_cdecl("FuzzHandshake_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzHandshake($0, size) } ?? 0 }
}

/// Before fuzzing: with `KAPSEL_FUZZ_SEEDS=<folder>`, writes the seed corpus there and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked(for: "FuzzHandshake")
}

/// One input: the fuzzer calls it millions of times.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHandshake(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: start, count: count))
    guard let mode = input.first else { return 0 }
    var peer = Peer(bytes: input.dropFirst(), handshakeFrames: mode & 1 == 0 ? 1 : 2)
    if mode & 1 == 0 { host(peer: &peer, signs: mode & 2 != 0) } else { daemon(peer: &peer, signs: mode & 2 != 0) }
    return 0
}

/// What the other side sent, as messages.
private struct Peer {
    var decoder: FrameDecoder
    var buffer: ByteBuffer

    init(bytes: ArraySlice<UInt8>, handshakeFrames: Int) {
        decoder = FrameDecoder(limits: WireLimits(maxFrameLength: 1 << 20), handshakeFrames: handshakeFrames)
        buffer = ByteBuffer(bytes: bytes)
    }

    /// The next message; nil when the bytes end; the error when they are malformed.
    mutating func next() -> Result<WireMessage, WireError>? {
        do throws(WireError) {
            return try decoder.nextMessage(from: &buffer).map { .success($0) }
        } catch {
            return .failure(error)
        }
    }
}

/// The host reading a would-be daemon.
private func host(peer: inout Peer, signs: Bool) {
    var state = HostConnectionState(secret: secret)
    var admitted = false
    var closed = false
    func check(_ actions: [HostConnectionState.Action]) -> [HostConnectionState.Action] {
        for action in actions {
            switch action {
            case .admit(let hello, _):
                precondition(!admitted && !closed, "admitted twice or after closing")
                precondition(HostSecret.proofsMatch(hello.proof, secret.daemonProof(hostNonce: hostNonce, daemonNonce: hello.nonce, token: hello.token)), "admitted a daemon without the secret")
            case .deliver:
                precondition(admitted && !closed, "a message delivered from a daemon not admitted")
            case .close:
                closed = true
            default:
                break
            }
        }
        return actions
    }
    _ = check(state.connected(nonce: hostNonce))
    while !closed, let next = peer.next() {
        switch next {
        case .failure(let error):
            _ = check(state.failed(String(describing: error), isViolation: true))
        case .success(var message):
            if signs, case .hello(var hello) = message {
                hello.proof = secret.daemonProof(hostNonce: hostNonce, daemonNonce: hello.nonce, token: hello.token)
                message = .hello(hello)
            }
            let actions = check(state.received(message))
            if actions.contains(where: { if case .admit = $0 { true } else { false } }) {
                _ = check(state.admitted(slot: 0, instance: 1))
                admitted = true
            }
        }
    }
    _ = check(state.closed())
}

/// A daemon reading a would-be host.
private func daemon(peer: inout Peer, signs: Bool) {
    var state = DaemonConnectionState(secret: secret, token: "token", pid: 1, makeNonce: { daemonNonce })
    var began = false
    var ended = false
    func check(_ actions: [DaemonConnectionState.Action]) {
        for action in actions {
            switch action {
            case .begin:
                precondition(!began && !ended, "began twice or after the end")
                began = true
            case .deliver:
                precondition(began && !ended, "obeyed a host that did not prove the secret")
            case .exit, .hostLost:
                ended = true
            case .send:
                break
            }
        }
    }
    var challengeNonce: [UInt8]?
    while !ended, let next = peer.next() {
        switch next {
        case .failure(let error):
            check(state.failed(.other(String(describing: error))))
        case .success(var message):
            if case .challenge(let challenge) = message { challengeNonce = challengeNonce ?? challenge.nonce }
            if signs, case .welcome(var welcome) = message, let challengeNonce {
                welcome.proof = secret.hostProof(hostNonce: challengeNonce, daemonNonce: daemonNonce)
                message = .welcome(welcome)
            }
            check(state.received(message))
        }
    }
    check(state.closed())
}
