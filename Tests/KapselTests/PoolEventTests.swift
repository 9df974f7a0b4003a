import KapselWire
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// What the dispatcher's state machine tells the pool's observer (its logger and
/// metrics), on the state machine alone.
@Suite("Dispatcher state machine: the events it reports")
struct PoolEventTests {
    @Test func aDaemonIsReportedLaunchedThenOnline() {
        let harness = DispatcherHarness(slots: 1)
        guard harness.events.count == 2, case .launched(0, 1, let pid) = harness.events[0], case .online(let daemon, nil) = harness.events[1] else {
            Issue.record("expected launched then online, got \(harness.events)")
            return
        }
        #expect(pid == harness.pid(slot: 0))
        #expect(daemon == DaemonIdentity(index: 0, instance: 1, pid: pid))
    }

    @Test func aCrashIsReportedWithItsSignalOutputAndJobThenTheReplacement() {
        var harness = DispatcherHarness(slots: 1)
        harness.submit(7)
        harness.events = []
        harness.exit(slot: 0, .signaled(signal: SIGSEGV), output: "about to fall over")
        let crashes = harness.events.compactMap { event -> (DaemonIdentity, ProcessTermination?, String?, String?)? in
            if case .crashed(let daemon, let termination, let output, let jobType) = event { (daemon, termination, output, jobType) } else { nil }
        }
        #expect(crashes.count == 1)
        #expect(crashes.first?.0 == DaemonIdentity(index: 0, instance: 1, pid: harness.pid(slot: 0, instance: 1)))
        #expect(crashes.first?.1 == .signaled(signal: SIGSEGV))
        #expect(crashes.first?.2 == "about to fall over")
        #expect(crashes.first?.3 == "T")
        #expect(harness.events.contains { if case .replaced(0, 2) = $0 { true } else { false } })
    }

    @Test func aRetirementIsNoCrash() {
        var harness = DispatcherHarness(slots: 1)
        harness.execute(harness.state.daemonRetiring(slot: 0, instance: 1, exitCode: UInt8(DaemonExitCode.maxJobs.rawValue)))
        harness.exit(slot: 0, .exited(code: DaemonExitCode.maxJobs.rawValue))
        #expect(harness.events.contains { if case .retired(let daemon, _) = $0 { daemon.index == 0 } else { false } })
        #expect(!harness.events.contains { if case .crashed = $0 { true } else { false } })
        #expect(harness.events.contains { if case .replaced(0, 2) = $0 { true } else { false } })
    }

    @Test func aProtocolViolationIsAFailedConnection() {
        var harness = DispatcherHarness(slots: 1)
        harness.execute(harness.state.connectionClosed(slot: 0, instance: 1, reason: "unknown message kind 238"))
        harness.exit(slot: 0, .signaled(signal: SIGKILL), closing: false)
        let reasons = harness.events.compactMap { if case .connectionFailed(_, let reason) = $0 { reason } else { nil } }
        #expect(reasons == ["unknown message kind 238"])
        #expect(!harness.events.contains { if case .crashed = $0 { true } else { false } })
    }

    @Test func aRetryIsReportedAndTheJobRunsAgain() {
        var harness = DispatcherHarness(slots: 1)
        harness.submit(3, retries: 1)
        harness.crashAndReplace(slot: 0)
        #expect(harness.events.contains { if case .retried(3, "T", _) = $0 { true } else { false } })
        #expect(harness.link(0).runIDs == [3])
    }

    @Test func aTimeOutAndTheKillOfItsUnresponsiveDaemonAreReported() {
        var harness = DispatcherHarness(slots: 1)
        harness.submit(5, timeout: .seconds(1))
        harness.fire(.timeout(job: 5, attempt: 1))
        harness.fire(.cancelGrace(slot: 0, instance: 1, job: 5))
        #expect(harness.events.contains { if case .timedOut(5, "T", let daemon?) = $0 { daemon.index == 0 } else { false } })
        #expect(harness.events.contains { if case .killedUnresponsive(_, 5) = $0 { true } else { false } })
        #expect(harness.killed(harness.pid(slot: 0)))
    }

    @Test func failedLaunchesAreReportedAndTheSlotGivenUp() {
        var harness = DispatcherHarness(slots: 1, maxStartFailures: 2, connect: false)
        harness.execute(harness.state.launched(slot: 0, instance: 1, result: .failure(SpawnError("/no/such/daemon", errno: ENOENT, step: "starting it"))))
        harness.execute(harness.state.launched(slot: 0, instance: 2, result: .failure(SpawnError("/no/such/daemon", errno: ENOENT, step: "starting it"))))
        let failures = harness.events.compactMap { if case .launchFailed(0, let instance, let reason) = $0 { (instance, reason) } else { nil } }
        #expect(failures.map(\.0) == [1, 2])
        #expect(failures.allSatisfy { $0.1.contains("/no/such/daemon") })
        #expect(harness.events.contains { if case .slotGivenUp(0, let reason) = $0 { reason.contains("/no/such/daemon") } else { false } })
    }

    @Test func aRefusedConnectionIsReportedWithItsAddress() {
        var harness = DispatcherHarness(slots: 1)
        harness.execute(harness.state.connectionRejected("authentication failed", address: "10.0.0.9:4711"))
        #expect(harness.events.contains { if case .refused("10.0.0.9:4711", "authentication failed") = $0 { true } else { false } })
        #expect(harness.state.status(url: "").rejectedConnections == 1)
    }

    @Test func jobsLeavingTheQueueAreReportedOnlyWhenQueueWaitsAreMeasured() {
        var measured = DispatcherHarness(slots: 1, reportsStarts: true)
        let resolver = measured.submit(1, retries: 1)
        measured.crashAndReplace(slot: 0)
        let starts = measured.events.compactMap { if case .started(let started) = $0 { started } else { nil } }
        #expect(starts.count == 1, "a retry is not a second start")
        #expect(starts.first === resolver)

        var unmeasured = DispatcherHarness(slots: 1)
        unmeasured.submit(1)
        #expect(!unmeasured.events.contains { if case .started = $0 { true } else { false } })
    }

    @Test func aStoppingPoolReportsNoCrashes() {
        var harness = DispatcherHarness(slots: 2)
        harness.submit(1)
        harness.events = []
        harness.execute(harness.state.stop())
        harness.exit(slot: 0, .signaled(signal: SIGKILL))
        harness.exit(slot: 1, .exited(code: 0))
        #expect(harness.events.isEmpty, "\(harness.events)")
    }
}
