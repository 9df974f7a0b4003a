import KapselWire
import NIOCore
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// The dispatcher sends a daemon whose jobs are short a few more behind the one it runs,
/// and one at a time when they are long; checked on the state machine alone.
@Suite("Dispatcher state machine: jobs sent ahead")
struct DispatcherLookaheadTests {
    /// Two short jobs on each slot give it a measured pace (the first, sent to an idle
    /// daemon, is not measured; the second began when the first answered).
    private func warmedUp(slots: Int, jobTime: Duration) -> DispatcherHarness {
        var harness = DispatcherHarness(slots: slots)
        harness.jobTime = jobTime
        for id in 0..<UInt64(2 * slots) { harness.submit(1000 + id, retries: 0) }
        while let slot = harness.state.slots.indices.first(where: { !harness.state.slots[$0].inFlight.isEmpty }) {
            for index in slot..<slots {
                if let head = harness.state.slots[index].inFlight.first { harness.finish(slot: index, head) }
            }
        }
        return harness
    }

    @Test func theDepthFollowsTheEstimatedJobTime() {
        var pace = SlotPace()
        let start = ContinuousClock.now
        #expect(pace.depth == 1, "nothing measured yet")
        pace.headFinished(at: start)
        #expect(pace.depth == 1, "no head was under way")
        pace.headStarted(at: start)
        pace.headFinished(at: start + .microseconds(50))
        #expect(pace.depth == SlotPace.maximumDepth, "1 ms holds 20 jobs of 50 µs; the cap is 16")
        pace.headStarted(at: start)
        pace.headFinished(at: start + .microseconds(400))
        #expect(pace.estimate == .microseconds(400), "a longer job counts at once")
        #expect(pace.depth == 3, "two of 400 µs fit in 1 ms beyond the running one")
        pace.headStarted(at: start)
        pace.headFinished(at: start + .milliseconds(5))
        #expect(pace.depth == 1)
        pace.headStarted(at: start)
        pace.headFinished(at: start + .microseconds(100))
        #expect(pace.estimate == (Duration.milliseconds(5) * 3 + .microseconds(100)) / 4, "a shorter one counts gradually")
    }

    @Test func shortJobsAreSentAheadUpToTheDepth() {
        var harness = warmedUp(slots: 1, jobTime: .microseconds(50))
        for id in 1...40 { harness.submit(UInt64(id)) }
        let sent = harness.link(0).runIDs.filter { $0 < 1000 }
        #expect(sent == Array(1...UInt64(SlotPace.maximumDepth)))
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).runIDs.filter { $0 < 1000 } == Array(1...UInt64(SlotPace.maximumDepth + 1)), "one answer, one more sent")
    }

    @Test func longJobsGoOneAtATime() {
        var harness = warmedUp(slots: 1, jobTime: .milliseconds(5))
        for id in 1...5 { harness.submit(UInt64(id)) }
        #expect(harness.link(0).runIDs.filter { $0 < 1000 } == [1])
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).runIDs.filter { $0 < 1000 } == [1, 2])
    }

    @Test func anIdleDaemonGetsWorkBeforeABusyOneGetsMoreAndTheRestGoesInTurn() {
        var harness = warmedUp(slots: 2, jobTime: .microseconds(100))
        for id in 1...6 { harness.submit(UInt64(id)) }
        #expect(harness.link(0).runIDs.filter { $0 < 1000 } == [1, 3, 5])
        #expect(harness.link(1).runIDs.filter { $0 < 1000 } == [2, 4, 6])
    }

    @Test func aJobWithATimeLimitOrAnActorCallWaitsForAnIdleDaemonAndTheQueueKeepsItsOrder() {
        var harness = warmedUp(slots: 1, jobTime: .microseconds(50))
        harness.submit(1)
        harness.submit(2, timeout: .seconds(1))
        harness.submit(3)
        #expect(harness.link(0).runIDs.filter { $0 < 1000 } == [1], "2's time would start before the daemon reached it; 3 stays behind it")
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).runIDs.filter { $0 < 1000 } == [1, 2, 3], "2 goes to the idle daemon, 3 may go ahead behind it")
        #expect(harness.timers.keys.contains { if case .timeout(2, _) = $0 { true } else { false } })
    }

    @Test func jobsSentAheadOfACrashRunOnTheReplacementWithoutUsingARetry() {
        var harness = warmedUp(slots: 1, jobTime: .microseconds(50))
        let resolvers = (1...4).map { harness.submit(UInt64($0), retries: 0) }
        #expect(harness.link(0).runIDs.filter { $0 < 1000 } == [1, 2, 3, 4])
        harness.crashAndReplace(slot: 0)
        #expect(resolvers[0].errorCode == .crashed, "the running job")
        let unresolved = resolvers[1...].allSatisfy { $0.count == 0 }
        #expect(unresolved, "the rest never started")
        #expect(harness.link(0).runIDs == [2, 3, 4], "the pace is the work's: the new daemon gets them all again, in order")
        for id in UInt64(2)...4 { harness.finish(slot: 0, id) }
        let succeeded = resolvers[1...].allSatisfy(\.succeeded)
        #expect(succeeded)
        #expect(harness.state.status(url: "").waiting == 0)
    }

    @Test func aResultStillInTheConnectionWhenTheProcessDiesResolvesAndTheJobAfterItIsBlamed() {
        var harness = warmedUp(slots: 1, jobTime: .microseconds(50))
        let resolvers = (1...3).map { harness.submit(UInt64($0), retries: 0) }
        let instance = harness.state.slots[0].instance
        let link = harness.link(0)
        // The process is reaped before the host has read the first job's result.
        harness.exit(slot: 0, .signaled(signal: SIGSEGV), closing: false)
        #expect(harness.timers[.exitDrain(slot: 0, instance: instance)] == DispatcherState.exitDrainGrace)
        #expect(resolvers.allSatisfy { $0.count == 0 }, "nothing is decided while the connection may hold answers")
        harness.submit(4, retries: 0)
        #expect(!link.runIDs.contains(4), "a dead daemon gets no more work")
        harness.finish(slot: 0, 1)
        #expect(resolvers[0].succeeded, "the result it wrote before it died counts")
        harness.execute(harness.state.connectionClosed(slot: 0, instance: instance, reason: "connection reset by peer"))
        #expect(resolvers[1].errorCode == .crashed, "the job it was running when it died")
        #expect(resolvers[2].count == 0, "the job after it never started: it waits for the replacement")
    }

    @Test func aDeadDaemonsConnectionThatStaysOpenIsTakenAsReadAfterTheGrace() {
        var harness = warmedUp(slots: 1, jobTime: .microseconds(50))
        let resolvers = (1...2).map { harness.submit(UInt64($0), retries: 0) }
        let instance = harness.state.slots[0].instance
        harness.exit(slot: 0, .signaled(signal: SIGKILL), closing: false)
        harness.fire(.exitDrain(slot: 0, instance: instance))
        #expect(resolvers[0].errorCode == .crashed)
        #expect(resolvers[1].count == 0)
        #expect(harness.state.slots[0].instance == instance + 1, "a replacement is on its way")
    }
}
