import Testing
@testable import KapselWire

@Suite("Handshake proofs")
struct HandshakeTests {
    @Test func proofsVerifyOnlyWithTheSameSecretNoncesAndToken() {
        let secret = HostSecret.random()
        let hostNonce = randomNonce(), daemonNonce = randomNonce()
        let proof = secret.daemonProof(hostNonce: hostNonce, daemonNonce: daemonNonce, token: "t")
        #expect(HostSecret.proofsMatch(proof, secret.daemonProof(hostNonce: hostNonce, daemonNonce: daemonNonce, token: "t")))
        #expect(!HostSecret.proofsMatch(proof, HostSecret.random().daemonProof(hostNonce: hostNonce, daemonNonce: daemonNonce, token: "t")))
        #expect(!HostSecret.proofsMatch(proof, secret.daemonProof(hostNonce: randomNonce(), daemonNonce: daemonNonce, token: "t")))
        #expect(!HostSecret.proofsMatch(proof, secret.daemonProof(hostNonce: hostNonce, daemonNonce: daemonNonce, token: "u")))
        // The host's proof is not the daemon's: a reflected proof does not pass.
        #expect(!HostSecret.proofsMatch(proof, secret.hostProof(hostNonce: hostNonce, daemonNonce: daemonNonce)))
        #expect(!HostSecret.proofsMatch(proof, Array(proof.dropLast())))
    }

    @Test func secretsRoundTripThroughHex() {
        let secret = HostSecret.random()
        #expect(secret.hex.count == 64)
        #expect(HostSecret(hex: secret.hex) == secret)
        #expect(HostSecret(hex: "ABcd")?.bytes == [0xab, 0xcd])
        #expect(HostSecret(hex: "abc") == nil)
        #expect(HostSecret(hex: "zz") == nil)
        #expect(HostSecret(hex: "") == nil)
    }

    @Test func noncesAreFresh() {
        #expect(randomNonce() != randomNonce())
        #expect(randomNonce().count == 32)
    }
}
