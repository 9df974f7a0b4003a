import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// A graceful shutdown on the state machine alone: no new jobs, the submitted ones run
/// to their end, and whoever waits for that is resumed once, when it happens.
@Suite("Dispatcher state machine: graceful shutdown")
struct DispatcherDrainTests {
    @Test func submittedJobsRunToTheirEndAndNewOnesAreRefused() async {
        var harness = DispatcherHarness(slots: 1)
        harness.submit(1)
        harness.submit(2)
        harness.execute(harness.state.stopAccepting())
        let late = harness.submit(3)
        #expect(late.errorCode == .shuttingDown)
        await withCheckedContinuation { continuation in
            harness.execute(harness.state.awaitDrained(continuation))
            #expect(harness.drainsResumed == 0)
            harness.finish(slot: 0, 1)
            #expect(harness.drainsResumed == 0, "job 2 still waits")
            #expect(harness.link(0).runIDs == [1, 2])
            harness.finish(slot: 0, 2)
        }
        #expect(harness.drainsResumed == 1)
        #expect(harness.link(0).runIDs == [1, 2])
    }

    @Test func aDaemonThatDiesWhileDrainingIsReplacedAndItsJobRetried() async {
        var harness = DispatcherHarness(slots: 1)
        let job = harness.submit(1, retries: 1)
        harness.execute(harness.state.stopAccepting())
        await withCheckedContinuation { continuation in
            harness.execute(harness.state.awaitDrained(continuation))
            harness.crashAndReplace(slot: 0)
            #expect(harness.drainsResumed == 0)
            harness.finish(slot: 0, 1)
        }
        #expect(job.succeeded)
        #expect(harness.drainsResumed == 1)
    }

    @Test func theGraceEndsTheWait() async {
        var harness = DispatcherHarness(slots: 1)
        let job = harness.submit(1)
        harness.execute(harness.state.stopAccepting())
        await withCheckedContinuation { continuation in
            harness.execute(harness.state.awaitDrained(continuation))
            harness.execute(harness.state.drainTimedOut())
        }
        #expect(harness.drainsResumed == 1)
        harness.execute(harness.state.stop())
        #expect(job.errorCode == .stopped)
    }

    @Test func anIdlePoolIsDrainedAtOnceThoughAParkedSlotHasSetupWaiting() async {
        var harness = DispatcherHarness(slots: 2, scaling: ScalingPolicy(workers: 1...2, idleTime: nil, launchTimeout: nil, crashesMax: 0))
        harness.execute(harness.state.everywhere(jobType: "Setup", envelope: Envelope(payload: .init()), resolver: { _ in FakeResolver() }))
        harness.finish(slot: 0, harness.link(0).runIDs[0])
        harness.execute(harness.state.stopAccepting())
        await withCheckedContinuation { continuation in
            harness.execute(harness.state.awaitDrained(continuation))
        }
        #expect(harness.drainsResumed == 1)
        let late = FakeResolver()
        harness.execute(harness.state.everywhere(jobType: "Setup", envelope: Envelope(payload: .init()), resolver: { _ in late }))
        #expect(late.errorCode == .shuttingDown)
    }
}
