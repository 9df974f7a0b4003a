import KapselSharedMemory
import KapselWire
import NIOCore
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// The dispatcher's rules for daemons coming and going — start-up, connections,
/// retirement, parking, daemons deployed by hand — on the state machine alone.
@Suite("Dispatcher state machine: daemons")
struct DispatcherLifecycleTests {
    @Test func readinessWaitsForEveryDaemon() async throws {
        var harness = DispatcherHarness(slots: 2, connect: false)
        try await withCheckedThrowingContinuation { continuation in
            harness.execute(harness.state.awaitReadiness(continuation))
            harness.connect(slot: 0)
            #expect(harness.readiness.isEmpty)
            harness.connect(slot: 1)
        }
        #expect(harness.readiness.count == 1)
    }

    @Test func readinessFailsWithTheReasonWhenASlotIsGivenUp() async {
        var harness = DispatcherHarness(slots: 2, connect: false)
        let error = await #expect(throws: DaemonsError.self) {
            try await withCheckedThrowingContinuation { continuation in
                harness.execute(harness.state.awaitReadiness(continuation))
                for _ in 1...3 { harness.exit(slot: 1, .exited(code: 78), output: "no bootstrap") }
            }
        }
        #expect(error?.description.contains("daemon 1 cannot start") == true)
        #expect(error?.description.contains("no bootstrap") == true)
    }

    @Test func aStartupTimeOutNamesTheDaemonsThatDidNotConnect() async {
        var harness = DispatcherHarness(slots: 2, connect: false)
        let error = await #expect(throws: DaemonsError.self) {
            try await withCheckedThrowingContinuation { continuation in
                harness.execute(harness.state.awaitReadiness(continuation))
                harness.connect(slot: 0)
                harness.execute(harness.state.startupTimedOut(after: .seconds(30)))
            }
        }
        #expect(error?.description.contains("did not connect within 30") == true)
        #expect(error?.description.contains("daemon 1") == true)
        #expect(error?.description.contains("daemon 0") == false)
    }

    @Test func aTokenAdmitsOneDaemonOnce() {
        var harness = DispatcherHarness(slots: 1, connect: false)
        let token = harness.tokens[0]!
        if case .accepted = harness.authenticate(slot: 0, token: "forged") { Issue.record("a stranger's token was accepted") }
        guard case .accepted(0, 1) = harness.authenticate(slot: 0, token: token) else {
            Issue.record("the launch token was refused")
            return
        }
        guard case .refused(let reason) = harness.authenticate(slot: 0, token: token) else {
            Issue.record("a token was accepted twice")
            return
        }
        #expect(reason.contains("unknown launch token"))
        #expect(harness.state.status(url: "").connections == 1)
        #expect(harness.link(0).messages.first == .welcome(Welcome(daemonIndex: 0, instance: 1, proof: [])))
    }

    @Test func aProtocolViolationKillsTheDaemonAndItsJobResolvesAsConnectionLost() {
        var harness = DispatcherHarness(slots: 1)
        let resolver = harness.submit(1)
        harness.execute(harness.state.connectionClosed(slot: 0, instance: 1, reason: "unknown message kind 238"))
        #expect(harness.killed(harness.pid(slot: 0)))
        #expect(harness.state.status(url: "").connections == 0)
        #expect(!harness.state.status(url: "").daemons[0].online)
        harness.exit(slot: 0, .signaled(signal: SIGKILL))
        #expect(resolver.errorCode == .connectionLost)
        #expect(resolver.error?.message.contains("unknown message kind 238") == true)
        #expect(harness.state.slots[0].crashed == 0)
        #expect(harness.launches.count == 2)
    }

    @Test func aDaemonThatClosesItsConnectionHasAGraceToExit() {
        var harness = DispatcherHarness(slots: 1)
        harness.execute(harness.state.connectionClosed(slot: 0, instance: 1, reason: nil))
        #expect(harness.signals.isEmpty)
        #expect(harness.timers[.disconnectGrace(slot: 0, instance: 1)] == DispatcherState.disconnectGrace)
        harness.fire(.disconnectGrace(slot: 0, instance: 1))
        #expect(harness.killed(harness.pid(slot: 0)))
    }

    @Test func aDaemonThatExitsAfterLosingItsHostDidNotCrash() {
        var harness = DispatcherHarness(slots: 1)
        let resolver = harness.submit(1)
        harness.exit(slot: 0, .exited(code: DaemonExitCode.hostLost.rawValue))
        #expect(resolver.errorCode == .connectionLost)
        #expect(harness.state.slots[0].crashed == 0)
    }

    @Test func aRetiringDaemonFinishesWhatItHoldsGetsNothingMoreAndIsDismissed() {
        var harness = DispatcherHarness(slots: 2)
        harness.submit(1)
        harness.execute(harness.state.daemonRetiring(slot: 0, instance: 1, exitCode: UInt8(DaemonExitCode.maxJobs.rawValue)))
        #expect(harness.link(0).shutdowns == 0, "it still holds a job")
        harness.submit(2)
        harness.submit(3)
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).runIDs == [1])
        #expect(harness.link(0).shutdowns == 1)
        #expect(harness.link(1).runIDs == [2])
        // Its exit is its retirement, not a crash: a fresh daemon takes the slot.
        harness.exit(slot: 0, .exited(code: DaemonExitCode.maxJobs.rawValue))
        #expect(harness.state.slots[0].crashed == 0)
        harness.connect(slot: 0)
        #expect(harness.link(0).runIDs == [3])
    }

    @Test func aRetirementWithAnUnknownCodeClosesTheConnection() {
        var harness = DispatcherHarness(slots: 1)
        harness.execute(harness.state.daemonRetiring(slot: 0, instance: 1, exitCode: 3))
        #expect(harness.link(0).wasClosed)
    }

    @Test func anIdleDaemonParksItsSlotUntilJobsWait() {
        var harness = DispatcherHarness(slots: 2)
        harness.execute(harness.state.daemonRetiring(slot: 0, instance: 1, exitCode: UInt8(DaemonExitCode.idle.rawValue)))
        #expect(harness.link(0).shutdowns == 1)
        harness.exit(slot: 0, .exited(code: DaemonExitCode.idle.rawValue))
        #expect(harness.state.slots[0].isParked)
        #expect(harness.launches.count == 2, "no new daemon for an idle slot")
        harness.submit(1)
        #expect(harness.launches.count == 2, "the other daemon is idle and takes it")
        harness.submit(2)
        #expect(harness.launches.count == 3, "a second waiting job starts the parked slot")
        harness.connect(slot: 0)
        #expect(harness.link(0).runIDs == [2])
    }

    /// Setup jobs run whenever a slot starts; on their own they are no reason to start it.
    @Test func aParkedSlotWithSetupJobsStaysParked() {
        var harness = DispatcherHarness(slots: 1)
        harness.execute(harness.state.everywhere(jobType: "Setup", envelope: Envelope(payload: ByteBuffer()), resolver: { _ in FakeResolver() }))
        harness.finish(slot: 0, harness.link(0).runIDs[0])
        harness.execute(harness.state.daemonRetiring(slot: 0, instance: 1, exitCode: UInt8(DaemonExitCode.idle.rawValue)))
        harness.exit(slot: 0, .exited(code: DaemonExitCode.idle.rawValue))
        #expect(harness.state.slots[0].isParked)
        #expect(harness.launches.count == 1)
        harness.submit(1)
        #expect(harness.launches.count == 2)
        harness.connect(slot: 0)
        let sent = harness.link(0).messages.compactMap { if case .run(let request) = $0 { request.jobType } else { nil } }
        #expect(sent == ["Setup"])
        harness.finish(slot: 0, harness.link(0).runIDs[0])
        #expect(harness.link(0).runIDs.last == 1)
    }

    @Test func restartRetiresTheDaemonAndAFreshOneTakesTheSlot() {
        var harness = DispatcherHarness(slots: 1)
        harness.submit(1)
        let (instance, actions) = harness.state.restart(slot: 0)
        harness.execute(actions)
        #expect(instance == 1)
        #expect(harness.link(0).shutdowns == 0)
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).shutdowns == 1)
        harness.exit(slot: 0, .exited(code: DaemonExitCode.stopped.rawValue))
        #expect(harness.state.slots[0].crashed == 0)
        #expect(harness.state.slots[0].instance == 2)
        #expect(harness.state.restart(slot: 0).actions.isEmpty, "not online yet")
    }

    @Test func aHandStartedDaemonIsGoneWithItsConnectionAndItsSlotWaitsForTheSameCommand() {
        var harness = DispatcherHarness(slots: 1, launchesProcesses: false)
        let token = harness.tokens[0]!
        let resolver = harness.submit(1)
        harness.execute(harness.state.connectionClosed(slot: 0, instance: 1, reason: nil))
        #expect(resolver.errorCode == .connectionLost)
        #expect(harness.state.slots[0].crashed == 0)
        #expect(harness.tokens[0] == token, "the slot keeps its command")
        #expect(harness.state.slots.waitingTokens.map(\.token) == [token])
        guard case .accepted(0, 2) = harness.authenticate(slot: 0, token: token) else {
            Issue.record("the daemon was not welcomed back")
            return
        }
    }

    @Test func aHandStartedDaemonHoldingACancelledJobPastTheGraceIsClosed() {
        var harness = DispatcherHarness(slots: 1, launchesProcesses: false)
        harness.submit(1)
        harness.execute(harness.state.cancel(job: 1))
        harness.fire(.cancelGrace(slot: 0, instance: 1, job: 1))
        #expect(harness.signals.isEmpty, "no process to signal")
        #expect(harness.link(0).wasClosed)
    }

    @Test func stoppingDoesNotWaitForHandStartedDaemons() async {
        var harness = DispatcherHarness(slots: 2, launchesProcesses: false, connect: false)
        _ = harness.authenticate(slot: 0, token: harness.tokens[0]!)
        harness.execute(harness.state.stop())
        #expect(harness.link(0).shutdowns == 1)
        await withCheckedContinuation { continuation in
            harness.execute(harness.state.awaitStopped(continuation))
        }
        #expect(harness.stopsResumed == 1)
        #expect(harness.state.status(url: "").connections == 0)
    }

    @Test func aDaemonLaunchedWhileStoppingIsKilled() {
        var harness = DispatcherHarness(slots: 1, connect: false)
        harness.execute(harness.state.stop())
        harness.execute(harness.state.launched(slot: 0, instance: 1, result: .success(4242)))
        #expect(harness.killed(4242))
        if case .accepted = harness.authenticate(slot: 0, token: harness.tokens[0]!) { Issue.record("a daemon was admitted while stopping") }
    }
}
