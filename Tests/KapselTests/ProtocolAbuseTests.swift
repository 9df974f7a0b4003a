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
    /// Bad peers against real processes; the handshake's every refusal is checked on
    /// embedded channels in `HandshakeTests`.
    @Suite("Bad peers: a stranger's garbage, a daemon with the wrong secret, a broken connection")
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
    }
}
