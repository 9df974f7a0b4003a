import Kapsel
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite("Daemon lifetime: retiring after so many jobs, so much time, or so long idle")
    struct LifetimeTests {
        @Test func aDaemonRetiresAfterItsMaximumNumberOfJobsAndIsReplaced() async throws {
            try await withTestDaemons(1, configure: { $0.lifetime = DaemonLifetime(maxJobs: 3) }) { daemons in
                var pids: [Int32] = []
                for _ in 0..<10 {
                    pids.append(try await daemons.submit(WhoAmI()).value.pid)
                }
                #expect(Set(pids).count == 4, "ten jobs on daemons that each take three: \(pids)")
                #expect(pids.enumerated().allSatisfy { $0.element == pids[$0.offset / 3 * 3] })
                let status = daemons.status().daemons[0]
                #expect(status.crashed == 0 && status.instance == 4)
            }
        }

        @Test func aDaemonPastItsWallTimeFinishesItsJobThenRetires() async throws {
            try await withTestDaemons(1, configure: { $0.lifetime = DaemonLifetime(wallTime: .milliseconds(300)) }) { daemons in
                let first = try await daemons.submit(WhoAmI()).value.pid
                let slow = try await daemons.submit(Sleep(milliseconds: 600, value: 7)).value
                #expect(slow == 7, "a job under way when the wall time passes finishes")
                #expect(await eventually { daemons.status().daemons[0].instance >= 2 })
                let next = try await daemons.submit(WhoAmI()).value.pid
                #expect(next != first)
                #expect(daemons.status().daemons[0].crashed == 0)
            }
        }

        @Test func idleDaemonsRetireAndComeBackWhenJobsWait() async throws {
            try await withTestDaemons(2, configure: { $0.lifetime = DaemonLifetime(idleTime: .milliseconds(200)) }) { daemons in
                #expect(await eventually { daemons.status().daemons.allSatisfy { !$0.online && $0.pid == nil } }, "both retired: \(daemons.status())")
                let values = try await daemons.mapValues(0..<4) { Echo($0) }
                #expect(values == [0, 1, 2, 3])
                #expect(daemons.status().daemons.allSatisfy { $0.crashed == 0 })
            }
        }
    }
}
