import Crypto

/// The per-host secret that daemons must prove they know. It never travels on the
/// wire: each side proves knowledge with an HMAC over the other side's fresh nonce.
public struct HostSecret: Sendable, Hashable {
    /// The raw key bytes (32 random bytes for a generated secret).
    public let bytes: [UInt8]

    /// A fresh random secret.
    public static func random() -> HostSecret {
        HostSecret(bytes: randomNonce())
    }

    /// A secret from raw bytes.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// A secret from its hex form (`hex`); nil unless the text is an even number of hex digits.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.bytes = bytes
    }

    /// Lower-case hex digits of the secret: what a daemon is given in its environment.
    public var hex: String {
        hexEncoded(bytes)
    }

    /// The daemon's proof: HMAC-SHA256 over the host's nonce, the daemon's nonce and the token.
    public func daemonProof(hostNonce: [UInt8], daemonNonce: [UInt8], token: String) -> [UInt8] {
        mac(Array("kapsel-daemon".utf8) + hostNonce + daemonNonce + Array(token.utf8))
    }

    /// The host's proof: HMAC-SHA256 over the daemon's nonce and the host's nonce.
    public func hostProof(hostNonce: [UInt8], daemonNonce: [UInt8]) -> [UInt8] {
        mac(Array("kapsel-host".utf8) + daemonNonce + hostNonce)
    }

    /// Whether `proof` equals `expected`, compared in constant time.
    public static func proofsMatch(_ proof: [UInt8], _ expected: [UInt8]) -> Bool {
        guard proof.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(proof, expected) { difference |= a ^ b }
        return difference == 0
    }

    private func mac(_ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: bytes)))
    }
}

/// 32 bytes from the system's secure random source.
public func randomNonce() -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}

private func hexValue(_ digit: UInt8) -> UInt8? {
    switch digit {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
    default: nil
    }
}

private func hexDigit(_ value: UInt8) -> UInt8 {
    value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
}

/// Lower-case hex digits of `bytes`.
package func hexEncoded(_ bytes: some Sequence<UInt8>) -> String {
    String(decoding: bytes.flatMap { [hexDigit($0 >> 4), hexDigit($0 & 0xf)] }, as: UTF8.self)
}
