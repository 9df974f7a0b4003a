import Foundation
import Kapsel
import KapselTestJobs
import KapselWire
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    /// Peers that are not daemons, or daemons that turn hostile: each ends its own
    /// connection, within a bounded time, and the pool's real daemons go on working.
    @Suite("Hostile peers")
    struct HostilePeerTests {
        /// A pool on loopback TCP with one real daemon (slot 0) and a second slot whose
        /// command (secret and token) the test's raw peer uses.
        func withOneRealDaemonAndASlotToAttackFrom(_ body: (Daemons, _ port: Int, _ secret: HostSecret, _ token: String) async throws -> Void) async throws {
            let daemons = try await Daemons(2, options: testOptions { options in
                options.remote.listen = "tcp://127.0.0.1:0"
                options.launch = .manual
            })
            let commands = daemons.launchCommands()
            let real = try startShell(commands[0])
            defer { real.terminate() }
            guard let port = Int(daemons.url.split(separator: ":").last ?? ""),
                  let secret = setting("KAPSEL_SECRET", in: commands[1]).flatMap(HostSecret.init(hex:)),
                  let token = setting("KAPSEL_TOKEN", in: commands[1]) else {
                Issue.record("no port, secret or token in \(daemons.url), \(commands[1])")
                await daemons.stop()
                return
            }
            #expect(await eventually(within: .seconds(10)) { daemons.status().daemons.contains { $0.online } })
            do {
                try await body(daemons, port, secret, token)
            } catch {
                Issue.record("\(error)")
            }
            await daemons.stop()
        }

        @Test func anAuthenticatedPeerSendingALengthOfTwoToTheSixtyThirdIsCutOffAlone() async throws {
            try await withOneRealDaemonAndASlotToAttackFrom { daemons, port, secret, token in
                // A chunk of an attachment claiming 2^63 bytes: refused before any memory.
                let chunk = try RawPeer(port: port)
                _ = try chunk.authenticate(secret: secret, token: token)
                let huge = AttachmentChunk(tag: 1, index: 0, byteCount: 1 << 63, offset: 0, bytes: ByteBuffer(bytes: [1, 2, 3]))
                try chunk.send(.attachmentChunk(huge))
                #expect(chunk.waitForClose(within: .seconds(5)) != nil, "the host keeps a peer that claims a 2^63-byte attachment")

                // A frame whose length field is the largest there is.
                #expect(await eventually(within: .seconds(5)) { daemons.launchCommands().count == 1 }, "the slot is free again")
                let frame = try RawPeer(port: port)
                _ = try frame.authenticate(secret: secret, token: token)
                try frame.send([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
                #expect(frame.waitForClose(within: .seconds(5)) != nil, "the host keeps a peer that announced a 4 GiB frame")
                #expect(await eventually(within: .seconds(5)) { daemons.launchCommands().count == 1 }, "the slot is free again")

                let answers = try await daemons.mapValues(0..<20) { Echo($0) }
                #expect(answers == Array(0..<20), "the real daemon goes on")
            }
        }

        @Test func aStrangerWithTheWrongSecretIsRefusedAndTheOversizedHelloOfAnotherIsCut() async throws {
            try await withOneRealDaemonAndASlotToAttackFrom { daemons, port, _, token in
                let wrong = try RawPeer(port: port)
                #expect(throws: RawPeerError.self) { _ = try wrong.authenticate(secret: HostSecret.random(), token: token) }
                // Before authenticating, a frame may be at most 4 KiB: a 1 MiB one is cut at its length.
                let big = try RawPeer(port: port)
                _ = try big.receive()
                try big.send([0x00, 0x10, 0x00, 0x00])
                #expect(big.waitForClose(within: .seconds(5)) != nil)
                #expect(await eventually { daemons.status().rejectedConnections >= 2 }, "\(daemons.status().rejectedConnections)")
                let answer = try await daemons.submit(Echo(5)).value
                #expect(answer == 5)
            }
        }

        @Test func aSlowLorisHelloIsCutAtTheHandshakeDeadlineHoweverOftenItSendsAByte() async throws {
            try await withOneRealDaemonAndASlotToAttackFrom { daemons, port, secret, token in
                let slow = try RawPeer(port: port)
                guard case .challenge(let challenge) = try slow.receive() else { throw RawPeerError("no challenge") }
                let nonce = randomNonce()
                let hello = WireMessage.hello(Hello(pid: 1, token: token, nonce: nonce, proof: secret.daemonProof(hostNonce: challenge.nonce, daemonNonce: nonce, token: token)))
                let bytes = Array(buffer: hello.frame())
                let clock = ContinuousClock()
                let start = clock.now
                // One byte every 200 ms: the whole hello would take more than 20 s.
                var cut = false
                for byte in bytes where !cut {
                    cut = (try? slow.send([byte])) == nil || slow.waitForClose(within: .milliseconds(200)) != nil
                }
                let after = clock.now - start
                #expect(cut, "the drip of \(bytes.count) bytes was let through")
                #expect(after < .seconds(13), "cut after \(after); the handshake deadline is 10 s")
                let answer = try await daemons.submit(Echo(6)).value
                #expect(answer == 6)
            }
        }

        @Test func tenThousandIdleConnectionsAreDroppedAndTheRealDaemonKeepsWorking() async throws {
            try await withOneRealDaemonAndASlotToAttackFrom { daemons, port, _, _ in
                let before = MemoryUsage.current().residentAnonymousKB
                // The flood comes from a process of its own, as it would.
                let flood = Process()
                flood.executableURL = URL(fileURLWithPath: testDaemonPath)
                flood.arguments = ["idle-flood", String(port), "10000"]
                let output = Pipe()
                flood.standardOutput = output
                try flood.run()
                try await Task.sleep(for: .seconds(3))
                // While they hang on (they connect within a second), the real daemon works, and the host's memory stays bounded.
                let answers = try await daemons.mapValues(0..<200) { Echo($0) }
                #expect(answers == Array(0..<200))
                let grown = MemoryUsage.current().residentAnonymousKB - before
                #expect(grown < 256 << 10, "idle connections cost the host \(grown) kB")

                let report = await Task.detached { String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }.value
                flood.waitUntilExit()
                // `established closed seconds`: each was dropped at the handshake deadline (10 s).
                let figures = report.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                #expect(figures.count == 3 && figures[0] == 10_000 && figures[1] == 10_000 && figures[2] < 15, "the flood saw: \(report)")
                #expect(daemons.status().rejectedConnections >= 10_000, "\(daemons.status().rejectedConnections) rejected")
                let answer = try await daemons.submit(Echo(9)).value
                #expect(answer == 9)
            }
        }
    }
}
