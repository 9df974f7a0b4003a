import Foundation
import Kapsel
import KapselStress
import Testing

extension ProcessTests {
    @Suite("Host death: a host killed mid-work leaves nothing running")
    struct HostDeathTests {
        @Test func everyDaemonLocalOverTCPAndOverSSHGoesWhenItsHostIsKilled() throws {
            let server = try SSHServer()
            let watch = try HostDeath.killWorkingHost(
                executable: testDaemonPath, arguments: ["under-fire", "2", "1", String(server.port), server.clientKey],
                others: { ProcessInspection.children(of: server.pid).map(\.pid) }
            )
            #expect(watch.daemons.map(\.kind) == ["local", "local", "tcp", "ssh"], "\(watch.hostOutput)")
            #expect(!watch.others.isEmpty, "the SSH daemon's session")
            for daemon in watch.daemons {
                let limit: Duration = daemon.kind == "local" ? .seconds(1) : HeartbeatSettings().timeout
                let time = watch.exitTimes[daemon.pid]
                #expect(time.map { $0 <= limit } == true, "\(daemon.kind) daemon \(daemon.pid) gone after \(time.map { "\($0)" } ?? "more than 8 s")")
            }
            #expect(watch.others.allSatisfy { watch.exitTimes[$0] != nil }, "the SSH sessions ended")
            print("host killed: " + ["local", "tcp", "ssh"].map { "\($0) daemons gone after \(watch.slowestExitMilliseconds(of: $0).map { "\($0) ms" } ?? "-")" }.joined(separator: ", "))
            #expect(watch.leakedSharedMemoryKB == 0, "no shared memory left in /dev/shm")
            withExtendedLifetime(server) {}
        }
    }
}
