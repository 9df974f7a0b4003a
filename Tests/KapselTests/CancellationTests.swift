import Foundation
import Kapsel
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite("Time-outs and cancellation")
    struct CancellationTests {
        @Test func aHungJobTimesOutAndItsDaemonIsReplaced() async throws {
            try await withTestDaemons(1) { daemons in
                let hungPID = daemons.status().daemons[0].pid!
                let clock = ContinuousClock()
                let start = clock.now
                let result = await daemons.submit(Spin(), timeout: .milliseconds(200)).result
                let elapsed = clock.now - start
                guard case .failure(let error) = result else {
                    Issue.record("a job that never ends resolved with a value")
                    return
                }
                #expect(error.code == .timedOut)
                #expect(elapsed >= .milliseconds(200))
                #expect(elapsed < .seconds(1))
                // The spinning daemon ignores cancellation: it is killed and replaced.
                #expect(await eventually(within: .seconds(2)) { !processExists(hungPID) })
                let next = try await daemons.submit(WhoAmI()).value
                #expect(next.instance == 2)
                #expect(daemons.status().daemons[0].crashed == 0)
            }
        }

        /// A job's time limit counts each attempt on a daemon afresh: the first attempt's
        /// deadline must not cut the retry short (the retry starts 600 ms into a 1 s limit).
        @Test func aRetryGetsItsWholeTimeLimit() async throws {
            try await withTestDaemons(1) { daemons in
                let marker = temporaryPath("slow-crash-once")
                defer { unlink(marker) }
                let job = SlowCrashOnce(markerPath: marker, milliseconds: 600, value: 42)
                let result = await daemons.submit(job, timeout: .seconds(1), retries: 1).result
                guard case .success(let value) = result else {
                    Issue.record("the retry did not get its whole time limit: \(result)")
                    return
                }
                #expect(value == 42)
                #expect(daemons.status().daemons[0].instance == 2)
            }
        }

        @Test func aCooperativeJobStopsOnTimeOutAndKeepsItsDaemon() async throws {
            try await withTestDaemons(1) { daemons in
                let pid = daemons.status().daemons[0].pid
                let result = await daemons.submit(CooperativeSpin(), timeout: .milliseconds(100)).result
                guard case .failure(let error) = result else {
                    Issue.record("expected a time-out")
                    return
                }
                #expect(error.code == .timedOut)
                let next = try await daemons.submit(WhoAmI()).value
                #expect(next.instance == 1)
                #expect(next.pid == pid)
            }
        }

        @Test func cancelStopsARunningJob() async throws {
            try await withTestDaemons(1) { daemons in
                let handle = daemons.submit(Sleep(milliseconds: 60_000))
                try await Task.sleep(for: .milliseconds(100))
                handle.cancel()
                let result = await handle.result
                guard case .failure(let error) = result else {
                    Issue.record("expected a cancellation")
                    return
                }
                #expect(error.code == .cancelled)
                let value = try await daemons.submit(Echo(3)).value
                #expect(value == 3)
                #expect(daemons.status().daemons[0].instance == 1)
            }
        }

        @Test func cancellingTheAwaitingTaskCancelsTheJob() async throws {
            try await withTestDaemons(1) { daemons in
                let handle = daemons.submit(Sleep(milliseconds: 60_000))
                let waiter = Task { await handle.result }
                try await Task.sleep(for: .milliseconds(100))
                waiter.cancel()
                guard case .failure(let error) = await waiter.value else {
                    Issue.record("expected a cancellation")
                    return
                }
                #expect(error.code == .cancelled)
                #expect(handle.isResolved)
                let value = try await daemons.submit(Echo(4)).value
                #expect(value == 4)
            }
        }

        @Test func aCancelledQueuedJobNeverRuns() async throws {
            try await withTestDaemons(1) { daemons in
                let marker = temporaryPath("never")
                defer { unlink(marker) }
                let busy = daemons.submit(Sleep(milliseconds: 300))
                let queued = daemons.submit(WriteMarker(path: marker, delayMilliseconds: 0))
                queued.cancel()
                guard case .failure(let error) = await queued.result else {
                    Issue.record("expected a cancellation")
                    return
                }
                #expect(error.code == .cancelled)
                _ = try await busy.value
                _ = try await daemons.submit(Echo(0)).value
                #expect(access(marker, F_OK) != 0)
            }
        }

        @Test func aCancelledJobWaitingInARoundRobinDaemonNeverRuns() async throws {
            try await withTestDaemons(1, configure: { $0.dispatch = .roundRobin }) { daemons in
                let marker = temporaryPath("never-rr")
                defer { unlink(marker) }
                let busy = daemons.submit(Sleep(milliseconds: 300))
                let queued = daemons.submit(WriteMarker(path: marker, delayMilliseconds: 0))
                try await Task.sleep(for: .milliseconds(50))
                queued.cancel()
                guard case .failure(let error) = await queued.result else {
                    Issue.record("expected a cancellation")
                    return
                }
                #expect(error.code == .cancelled)
                _ = try await busy.value
                _ = try await daemons.submit(Echo(0)).value
                #expect(access(marker, F_OK) != 0)
                #expect(daemons.status().daemons[0].instance == 1)
            }
        }
    }
}
