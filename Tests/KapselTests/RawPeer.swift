import Kapsel
import KapselWire
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A peer on a plain TCP socket that speaks Kapsel's wire by hand, for tests of what a
/// hostile or broken peer can do to a host: frames as they are or as no daemon sends them.
final class RawPeer {
    let descriptor: Int32

    /// Connects to `127.0.0.1:port` (blocking).
    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw RawPeerError("connect to port \(port): errno \(errno)")
        }
    }

    deinit { close(descriptor) }

    /// Writes `bytes` whole.
    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw RawPeerError("send: errno \(errno)") }
            sent += count
        }
    }

    /// Writes `message` as one frame.
    func send(_ message: WireMessage) throws {
        try send(Array(buffer: message.frame()))
    }

    /// The next whole message, waiting up to `limit`; nil if the connection ended first.
    func receive(within limit: Duration = .seconds(10)) throws -> WireMessage? {
        var decoder = FrameDecoder(limits: WireLimits(), handshakeFrames: 0)
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while clock.now < deadline {
            if let message = try decoder.nextMessage(from: &received) { return message }
            guard try readSome(until: deadline) else { return nil }
        }
        throw RawPeerError("no message within \(limit)")
    }

    /// Reads until the host closes the connection (what it sent before is dropped), for up
    /// to `limit`; returns how long that took, or nil if it stayed open.
    func waitForClose(within limit: Duration) -> Duration? {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < limit {
            guard (try? readSome(until: start + limit)) == true else { return clock.now - start }
            received.clear()
        }
        return nil
    }

    /// The mutual handshake with `secret` and the slot's `token`: the host's challenge,
    /// this peer's hello, the host's welcome. Returns the welcome.
    func authenticate(secret: HostSecret, token: String) throws -> Welcome {
        guard case .challenge(let challenge) = try receive() else { throw RawPeerError("no challenge") }
        let nonce = randomNonce()
        let proof = secret.daemonProof(hostNonce: challenge.nonce, daemonNonce: nonce, token: token)
        try send(.hello(Hello(pid: getpid(), token: token, nonce: nonce, proof: proof)))
        guard case .welcome(let welcome) = try receive() else { throw RawPeerError("not welcomed") }
        return welcome
    }

    private var received = ByteBuffer()

    /// Reads what arrives before `deadline`; false once the connection has ended.
    private func readSome(until deadline: ContinuousClock.Instant) throws -> Bool {
        var poll = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let left = deadline - ContinuousClock.now
        let milliseconds = max(0, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
        guard Glibc.poll(&poll, 1, milliseconds) > 0 else { return true }
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        let count = recv(descriptor, &chunk, chunk.count, 0)
        if count <= 0 { return false }
        received.writeBytes(chunk[0..<count])
        return true
    }
}

/// What went wrong with a raw peer.
struct RawPeerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The value of `NAME=value` in a launch command.
func setting(_ name: String, in command: String) -> String? {
    guard let range = command.firstRange(of: name + "=") else { return nil }
    let value = command[range.upperBound...]
    return String(value.drop { $0 == "'" }.prefix { !$0.isWhitespace && $0 != "'" })
}
