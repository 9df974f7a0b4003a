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
    @Suite("Bad peers: malformed frames, wrong secrets, fake hosts")
    struct ProtocolAbuseTests {
        func socketPath(_ daemons: Daemons) -> String {
            String(daemons.url.dropFirst("unix://".count))
        }

        /// Parses every frame in `bytes`.
        func messages(in bytes: [UInt8]) throws -> [WireMessage] {
            var buffer = ByteBuffer(bytes: bytes)
            var decoder = FrameDecoder(limits: WireLimits(), handshakeFrames: 0)
            var result: [WireMessage] = []
            while let message = try decoder.nextMessage(from: &buffer) { result.append(message) }
            return result
        }

        func refusal(after bytes: [UInt8], on daemons: Daemons) throws -> String? {
            let client = try RawClient(path: socketPath(daemons))
            guard let challenge = client.readFrame(), case .challenge? = try messages(in: challenge).first else {
                Issue.record("the host did not open with a challenge")
                return nil
            }
            client.send(bytes)
            guard case .refused(let reason)? = try messages(in: client.readToEnd()).first else { return nil }
            return reason
        }

        @Test func aMalformedFrameClosesOnlyThatConnection() async throws {
            try await withTestDaemons(1) { daemons in
                let reason = try refusal(after: [0, 0, 0, 1, 0xEE], on: daemons)
                #expect(reason?.contains("unknown message kind 238") == true)
                let status = daemons.status()
                #expect(status.rejectedConnections == 1)
                #expect(status.lastRejection?.contains("unknown message kind 238") == true)
                #expect(status.connections == 1)
                let value = try await daemons.submit(Echo(1)).value
                #expect(value == 1)
            }
        }

        @Test func anOversizedLengthPrefixIsRefusedBeforeAnythingIsBuffered() async throws {
            try await withTestDaemons(1) { daemons in
                let reason = try refusal(after: [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], on: daemons)
                #expect(reason?.contains("4294967295 bytes exceeds the limit of 4096 bytes") == true)
                let value = try await daemons.submit(Echo(2)).value
                #expect(value == 2)
            }
        }

        @Test func aHelloWithTheWrongSecretIsRefused() async throws {
            try await withTestDaemons(1) { daemons in
                let client = try RawClient(path: socketPath(daemons))
                guard let frame = client.readFrame(), case .challenge(let challenge)? = try messages(in: frame).first else {
                    Issue.record("no challenge")
                    return
                }
                let nonce = randomNonce()
                let proof = HostSecret.random().daemonProof(hostNonce: challenge.nonce, daemonNonce: nonce, token: "")
                client.send(Array(WireMessage.hello(Hello(pid: 1, token: "", nonce: nonce, proof: proof)).frame().readableBytesView))
                guard case .refused(let reason)? = try messages(in: client.readToEnd()).first else {
                    Issue.record("no refusal")
                    return
                }
                #expect(reason.contains("authentication failed"))
                #expect(daemons.status().lastRejection?.contains("authentication failed") == true)
                let value = try await daemons.submit(Echo(3)).value
                #expect(value == 3)
            }
        }

        @Test func aDaemonWithTheWrongSecretExitsWithAClearError() async throws {
            try await withTestDaemons(1) { daemons in
                let process = try startDaemonProcess(url: daemons.url, secret: HostSecret.random().hex)
                let outcome = finish(process)
                #expect(outcome.status == DaemonExitCode.refused.rawValue)
                #expect(outcome.output.contains("the host refused this daemon: authentication failed"))
                #expect(daemons.status().rejectedConnections == 1)
                #expect(daemons.status().connections == 1)
                let value = try await daemons.submit(Echo(4)).value
                #expect(value == 4)
            }
        }

        @Test func aDaemonWhoseConnectionBreaksLosesOnlyItsJob() async throws {
            try await withTestDaemons(2) { daemons in
                let result = await daemons.submit(CorruptConnection()).result
                guard case .failure(let error) = result else {
                    Issue.record("expected a lost connection")
                    return
                }
                #expect(error.code == .connectionLost)
                #expect(error.message.contains("unknown message kind 238"))
                #expect(await eventually { daemons.status().daemons.allSatisfy(\.online) })
                let values = try await [daemons.submit(Echo(5)).value, daemons.submit(Echo(6)).value]
                #expect(values == [5, 6])
                #expect(daemons.status().daemons.map(\.instance).sorted() == [1, 2])
            }
        }

        @Test func aDaemonLeavesAHostThatSendsGarbage() throws {
            let listener = try RawListener()
            let process = try startDaemonProcess(url: "unix://" + listener.path, secret: HostSecret.random().hex)
            guard let connection = listener.accept() else {
                Issue.record("the daemon did not connect")
                return
            }
            defer { close(connection) }
            let garbage: [UInt8] = [0, 0, 0, 3, 99, 9, 9]
            _ = garbage.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            let outcome = finish(process)
            #expect(outcome.status == DaemonExitCode.protocolError.rawValue)
            #expect(outcome.output.contains("unknown message kind 99"))
        }

        @Test func aDaemonLeavesAHostThatCannotProveTheSecret() throws {
            let listener = try RawListener()
            let secret = HostSecret.random()
            let process = try startDaemonProcess(url: "unix://" + listener.path, secret: secret.hex)
            guard let connection = listener.accept() else {
                Issue.record("the daemon did not connect")
                return
            }
            defer { close(connection) }
            let client = RawClient(adopting: connection)
            client.send(Array(WireMessage.challenge(Challenge(nonce: randomNonce())).frame().readableBytesView))
            guard let frame = client.readFrame(), case .hello(let hello)? = try messages(in: frame).first else {
                Issue.record("no hello")
                return
            }
            #expect(hello.token == "t")
            let forged = Welcome(daemonIndex: 0, instance: 1, proof: Array(repeating: 0, count: 32))
            client.send(Array(WireMessage.welcome(forged).frame().readableBytesView))
            let outcome = finish(process)
            #expect(outcome.status == DaemonExitCode.refused.rawValue)
            #expect(outcome.output.contains("the host could not prove it knows the secret"))
        }
    }
}
