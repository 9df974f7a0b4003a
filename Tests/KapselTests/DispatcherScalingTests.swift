import KapselWire
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// A pool that sizes itself, checked on the state machine alone: launches follow the
/// waiting work without flooding a slow launcher, idle workers retire down to the
/// minimum, launches that do not connect in time fail, crashes count against a limit.
@Suite("Dispatcher state machine: scaling")
struct DispatcherScalingTests {
    static func policy(
        _ workers: ClosedRange<Int>, idleTime: Duration? = .seconds(30), launchTimeout: Duration? = nil, crashesMax: Int = 0
    ) -> ScalingPolicy {
        ScalingPolicy(workers: workers, idleTime: idleTime, launchTimeout: launchTimeout, crashesMax: crashesMax)
    }

    @Test func aPoolFromZeroLaunchesOneWorkerPerWaitingJobUpToItsMaximum() {
        var harness = DispatcherHarness(slots: 3, scaling: Self.policy(0...3))
        #expect(harness.launches.isEmpty)
        #expect(harness.state.status(url: "").daemons.allSatisfy { $0.phase == .parked })

        harness.submit(1)
        #expect(harness.launches.count == 1)
        harness.submit(2)
        harness.submit(3)
        harness.submit(4)
        harness.submit(5)
        #expect(harness.launches.count == 3, "never more than the maximum")
        let status = harness.state.status(url: "")
        #expect(status.launching == 3 && status.waiting == 5)

        for slot in 0..<3 { harness.connect(slot: slot) }
        #expect((0..<3).map { harness.link($0).runIDs.count } == [1, 1, 1])
        #expect(harness.state.status(url: "").waiting == 2)
    }

    @Test func launchesUnderWayCountSoASlowLauncherIsNotFlooded() {
        var harness = DispatcherHarness(slots: 5, scaling: Self.policy(0...5))
        for id in 1...3 { harness.submit(UInt64(id)) }
        #expect(harness.launches.map(\.slot) == [0, 1, 2], "one launch per waiting job")
        // Events while the launches are pending ask for no more: a worker connecting
        // (it takes a job), a launch failing (its slot tries again, alone).
        harness.connect(slot: 0)
        harness.exit(slot: 1, .exited(code: 1), output: "queue full")
        #expect(harness.launches.map(\.slot) == [0, 1, 2, 1])
        #expect(harness.state.status(url: "").waiting == 2)
        // A job no pending launch will take calls for one more.
        harness.connect(slot: 1)
        harness.connect(slot: 2)
        harness.submit(4)
        #expect(harness.launches.map(\.slot) == [0, 1, 2, 1, 3])
    }

    @Test func anIdleWorkerRetiresAfterIdleTimeDownToTheMinimumAndItsSlotParks() {
        var harness = DispatcherHarness(slots: 3, scaling: Self.policy(1...3, idleTime: .seconds(30)))
        #expect(harness.launches.count == 1, "the minimum, at once")
        for id in 1...3 { harness.submit(UInt64(id)) }
        harness.connect(slot: 1)
        harness.connect(slot: 2)
        for (slot, id) in [(0, 1), (1, 2), (2, 3)] { harness.finish(slot: slot, UInt64(id)) }

        let idleTimers = harness.timers.filter { if case .idle = $0.key { true } else { false } }
        #expect(idleTimers.values.allSatisfy { $0 == .seconds(30) })
        for event in idleTimers.keys.sorted(by: { "\($0)" < "\($1)" }) { harness.fire(event) }
        let toldToGo = (0..<3).filter { harness.link($0).shutdowns == 1 }
        #expect(toldToGo.count == 2, "one worker stays: the minimum")
        for slot in toldToGo { harness.exit(slot: slot, .exited(code: 0)) }

        let status = harness.state.status(url: "")
        #expect(status.online == 1 && status.daemons.count { $0.phase == .parked } == 2)
        #expect(status.crashes == 0)
        // Work again: the parked slots start again.
        harness.submit(4)
        harness.submit(5)
        #expect(harness.launches.count == 3 + 1)
    }

    @Test func aWorkerThatGotAJobSinceItFellIdleDoesNotRetire() {
        var harness = DispatcherHarness(slots: 2, scaling: Self.policy(0...2))
        harness.submit(1)
        harness.connect(slot: 0)
        harness.finish(slot: 0, 1)
        let firstIdle = TimerEvent.idle(slot: 0, instance: 1, assigned: 1)
        #expect(harness.timers[firstIdle] != nil)
        harness.submit(2)
        harness.fire(firstIdle)
        #expect(harness.link(0).shutdowns == 0, "busy: it stays")
        harness.finish(slot: 0, 2)
        harness.fire(.idle(slot: 0, instance: 1, assigned: 2))
        #expect(harness.link(0).shutdowns == 1, "idle all along since its last job: it goes")
    }

    @Test func aLaunchThatDoesNotConnectInTimeIsStoppedAndCountsAsAFailedStart() {
        var harness = DispatcherHarness(slots: 2, maxStartFailures: 2, scaling: Self.policy(0...2, launchTimeout: .seconds(60)))
        let job = harness.submit(1)
        #expect(harness.launches.count == 1)
        let deadline = TimerEvent.launchDeadline(slot: 0, instance: 1)
        #expect(harness.timers[deadline] == .seconds(60))
        harness.execute(harness.state.launched(slot: 0, instance: 1, result: .success(harness.pid(slot: 0))))
        harness.fire(deadline)
        #expect(harness.killed(harness.pid(slot: 0)))
        harness.exit(slot: 0, .signaled(signal: SIGKILL), output: "sbatch: job 7 queued and waiting for resources")
        #expect(harness.launches.count == 2, "tried again")
        #expect(job.count == 0)

        // A launch whose process is not known yet when its time runs out is stopped as soon as it is.
        harness.fire(.launchDeadline(slot: 0, instance: 2))
        let actions = harness.state.launched(slot: 0, instance: 2, result: .success(harness.pid(slot: 0)))
        #expect(actions.contains { if case .signal(harness.pid(slot: 0), SIGKILL) = $0 { true } else { false } })
        harness.execute(actions)
        harness.exit(slot: 0, .signaled(signal: SIGKILL))
        // Slot 0 gave up; slot 1 tries, and fails the same way.
        #expect(harness.state.slots[0].hasFailed && harness.launches.last?.slot == 1)
        harness.exit(slot: 1, .exited(code: 1), output: "sbatch: error: invalid partition specified: nope")
        harness.exit(slot: 1, .exited(code: 1), output: "sbatch: error: invalid partition specified: nope")

        #expect(job.errorCode == .launchFailed)
        let message = job.error?.message ?? ""
        #expect(message.contains("test launcher") && message.contains("did not connect within 60.0 seconds"))
        #expect(message.contains("invalid partition specified"))
        // The pool gives its launcher another try with the next job.
        #expect(harness.state.status(url: "").daemons.allSatisfy { $0.phase == .parked })
        harness.submit(2)
        #expect(harness.launches.count == 5)
    }

    @Test func aFixedPoolLaunchesEverySlotAndNeverRetiresIdleWorkers() {
        var harness = DispatcherHarness(slots: 2)
        #expect(harness.launches.count == 2)
        harness.submit(1)
        harness.finish(slot: 0, 1)
        #expect(!harness.timers.keys.contains { if case .idle = $0 { true } else { false } })
        #expect(!harness.timers.keys.contains { if case .launchDeadline = $0 { true } else { false } })
    }

    @Test func aJobWhoseWorkerKeepsCrashingRunsAgainUpToCrashesMaxThenSaysHowOften() {
        var harness = DispatcherHarness(slots: 2, scaling: Self.policy(0...2, crashesMax: 2))
        let job = harness.submit(1, retries: nil)
        harness.connect(slot: 0)
        for _ in 0..<2 {
            #expect(job.count == 0)
            harness.crashAndReplace(slot: 0)
        }
        #expect(harness.link(0).runIDs == [1], "the third run")
        harness.exit(slot: 0, .signaled(signal: SIGSEGV))
        #expect(job.errorCode == .crashed)
        #expect(job.error?.message.contains("3 times") == true, "\(job.error?.message ?? "")")
        #expect(harness.state.status(url: "").crashes == 3)
        #expect(harness.state.status(url: "").daemons[0].crashed == 3)
    }

    @Test func aJobsOwnRetriesWinOverThePoolsCrashLimit() {
        var harness = DispatcherHarness(slots: 1, scaling: Self.policy(0...1, crashesMax: 5))
        let job = harness.submit(1, retries: 0)
        harness.connect(slot: 0)
        harness.exit(slot: 0, .signaled(signal: SIGKILL))
        #expect(job.errorCode == .crashed)
        #expect(job.error?.message.contains("times") == false)
    }

    @Test func aPolicyLaunchesOnlyForWorkNoReadyWorkerTakes() {
        let policy = Self.policy(0...4)
        #expect(policy.launches(waiting: 3, ready: 1, parked: 4) == 2)
        #expect(policy.launches(waiting: 3, ready: 5, parked: 4) == 0)
        #expect(policy.launches(waiting: 9, ready: 0, parked: 2) == 2)
        #expect(policy.mayRetireIdle(staying: 2))
        #expect(!Self.policy(2...4).mayRetireIdle(staying: 2))
        #expect(!Self.policy(0...4, idleTime: nil).mayRetireIdle(staying: 3))
        #expect(policy.retries(asked: nil) == 0 && Self.policy(0...4, crashesMax: 3).retries(asked: nil) == 3)
        #expect(ScalingPolicy.fixed(3).workers == 3...3 && !ScalingPolicy.fixed(3).isElastic)
    }
}
