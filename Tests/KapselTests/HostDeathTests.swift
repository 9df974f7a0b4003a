import CKapselShim
import Foundation
import Kapsel
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The pids of the processes whose parent is `parent`.
func processes(withParent parent: Int32) -> [Int32] {
    ProcessInspection.directoryEntries("/proc").compactMap { Int32($0) }.filter { pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == parent
    }
}

/// Waits until every pid in `pids` has exited (reaping those that became this process's
/// children), for up to `limit`; returns when each went, relative to `start`.
func exitTimes(of pids: [Int32], since start: ContinuousClock.Instant, limit: Duration) -> [Int32: Duration] {
    let clock = ContinuousClock()
    var gone: [Int32: Duration] = [:]
    while gone.count < pids.count && clock.now - start < limit {
        for pid in pids where gone[pid] == nil {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid || !processExists(pid) { gone[pid] = clock.now - start }
        }
        usleep(1_000)
    }
    return gone
}

extension ProcessTests {
    @Suite("Host death: a host killed mid-work leaves nothing running")
    struct HostDeathTests {
        @Test func everyDaemonLocalOverTCPAndOverSSHGoesWhenItsHostIsKilled() throws {
            // Orphans are re-parented to this process, so it can see them exit and reap them.
            #expect(kapsel_become_child_subreaper() == 0)
            let server = try SSHServer()
            let shmBefore = ProcessInspection.directoryEntries("/dev/shm").count
            let host = Process()
            host.executableURL = URL(fileURLWithPath: testDaemonPath)
            host.arguments = ["under-fire", "2", "1", String(server.port), server.clientKey]
            let output = Pipe()
            host.standardOutput = output
            try host.run()
            var lines: [String] = []
            var buffered = Data()
            while !lines.contains("ready") {
                let chunk = output.fileHandleForReading.availableData
                guard !chunk.isEmpty else { break }
                buffered += chunk
                lines = String(decoding: buffered, as: UTF8.self).split(separator: "\n").map(String.init)
            }
            let daemons = lines.compactMap { line -> (kind: String, pid: Int32)? in
                let parts = line.split(separator: " ")
                guard parts.count == 2, let pid = Int32(parts[1]) else { return nil }
                return (String(parts[0]), pid)
            }
            #expect(daemons.map(\.kind) == ["local", "local", "tcp", "ssh"], "\(lines)")
            #expect(daemons.allSatisfy { processExists($0.pid) })
            let sessions = processes(withParent: server.pid)
            #expect(!sessions.isEmpty, "the SSH daemon's session")
            // Let the work run: jobs in flight, shared memory held.
            usleep(300_000)

            let start = ContinuousClock.now
            kill(host.processIdentifier, SIGKILL)
            let gone = exitTimes(of: daemons.map(\.pid) + sessions, since: start, limit: .seconds(8))
            // Reaped here: the orphaned `sh` of a launch command can leave Foundation's
            // child monitor waiting.
            var status: Int32 = 0
            _ = waitpid(host.processIdentifier, &status, 0)
            for daemon in daemons {
                let limit: Duration = daemon.kind == "local" ? .seconds(1) : HeartbeatSettings().timeout
                #expect(gone[daemon.pid].map { $0 <= limit } == true, "\(daemon.kind) daemon \(daemon.pid) gone after \(gone[daemon.pid].map { "\($0)" } ?? "more than 8 s")")
            }
            #expect(sessions.allSatisfy { gone[$0] != nil }, "the SSH sessions ended")
            print("host killed: " + daemons.map { "\($0.kind) daemon gone after \(gone[$0.pid].map { "\($0)" } ?? "-")" }.joined(separator: ", "))
            #expect(ProcessInspection.directoryEntries("/dev/shm").count == shmBefore, "no shared memory left in /dev/shm")
            withExtendedLifetime(server) {}
        }
    }
}
