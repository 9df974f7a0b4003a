import KapselSharedMemory
import KapselWire
import NIOCore
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// The dispatcher's rules for jobs, checked on the state machine alone: no processes, no sockets.
@Suite("Dispatcher state machine: jobs")
struct DispatcherStateTests {
    @Test func jobsGoFirstInFirstOutToTheFirstIdleDaemon() {
        var harness = DispatcherHarness(slots: 2)
        let resolvers = (1...5).map { harness.submit(UInt64($0)) }
        #expect(harness.link(0).runIDs == [1])
        #expect(harness.link(1).runIDs == [2])
        harness.finish(slot: 1, 2)
        #expect(harness.link(1).runIDs == [2, 3])
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).runIDs == [1, 4])
        harness.finish(slot: 0, 4)
        #expect(harness.link(0).runIDs == [1, 4, 5])
        #expect(resolvers.map(\.count) == [1, 1, 0, 1, 0])
        #expect(harness.state.status(url: "").waiting == 0)
    }

    /// Resolving runs the submitter's callbacks (decoding, starting more work): the
    /// daemon's next job is sent before that, not after.
    @Test func aDaemonGetsItsNextJobBeforeTheFinishedOneResolves() {
        var harness = DispatcherHarness(slots: 1)
        let first = harness.submit(1)
        harness.submit(2)
        let actions = harness.state.jobFinished(slot: 0, instance: 1, requestID: 1, completion: .value(Envelope(payload: ByteBuffer())), at: harness.now)
        let order = actions.compactMap { action -> String? in
            switch action {
            case .send(_, .run(let id, _, _)): "send \(id)"
            case .resolve(let resolver, _): resolver === first ? "resolve 1" : "resolve ?"
            default: nil
            }
        }
        #expect(order == ["send 2", "resolve 1"])
    }

    @Test func roundRobinSendsEverythingAtOnceInTurn() {
        var harness = DispatcherHarness(slots: 2, mode: .roundRobin)
        for id in 1...5 { harness.submit(UInt64(id)) }
        #expect(harness.link(0).runIDs == [1, 3, 5])
        #expect(harness.link(1).runIDs == [2, 4])
    }

    @Test func aCrashFailsTheRunningJobAndRequeuesTheRestInOrder() {
        var harness = DispatcherHarness(slots: 1, mode: .roundRobin)
        let resolvers = (1...3).map { harness.submit(UInt64($0)) }
        harness.exit(slot: 0, .signaled(signal: SIGSEGV), output: "Segmentation fault")
        #expect(resolvers[0].errorCode == .crashed)
        #expect(resolvers[0].error?.termination == .signaled(signal: SIGSEGV))
        #expect(resolvers[0].error?.daemonOutput == "Segmentation fault")
        #expect(resolvers[1].count == 0 && resolvers[2].count == 0)
        #expect(harness.launches.count == 2)
        harness.connect(slot: 0)
        #expect(harness.link(0).runIDs == [2, 3])
        #expect(harness.state.slots[0].instance == 2)
        #expect(harness.state.slots[0].crashed == 1)
    }

    @Test func retriesPutACrashedJobBackAtTheFront() {
        var harness = DispatcherHarness(slots: 1)
        let first = harness.submit(1, retries: 1)
        let second = harness.submit(2)
        harness.crashAndReplace(slot: 0, signal: SIGKILL)
        #expect(first.count == 0)
        #expect(harness.link(0).runIDs == [1])
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).runIDs == [1, 2])
        #expect(first.succeeded && second.count == 0)
    }

    @Test func aJobThatKeepsCrashingFailsOnceItsRetriesAreUsedUp() {
        var harness = DispatcherHarness(slots: 1, maxStartFailures: 10)
        let resolver = harness.submit(1, retries: 2)
        var runs = 0
        while resolver.count == 0 && runs < 10 {
            runs += harness.link(0).runIDs.count
            harness.crashAndReplace(slot: 0)
        }
        #expect(runs == 3, "ran once and retried twice")
        #expect(resolver.errorCode == .crashed)
        #expect(harness.state.slots[0].crashed == 3)
    }

    /// The first attempt's deadline must not end the retry (nor the job while it waits for
    /// its next daemon): each attempt on a daemon has its own time limit.
    @Test func aRetryIsNotCutShortByTheFirstAttemptsDeadline() {
        var harness = DispatcherHarness(slots: 1)
        let resolver = harness.submit(1, timeout: .seconds(1), retries: 1)
        let firstDeadline = harness.deadlines
        #expect(firstDeadline == [.timeout(job: 1, attempt: 1)])
        harness.exit(slot: 0, .signaled(signal: SIGSEGV))
        #expect(harness.deadlines.isEmpty, "the ended attempt's deadline is cancelled")
        // Waiting for the replacement: the old deadline passes.
        for event in firstDeadline { harness.execute(harness.state.timerFired(event)) }
        #expect(resolver.count == 0)
        harness.connect(slot: 0)
        #expect(harness.link(0).runIDs == [1])
        #expect(harness.deadlines == [.timeout(job: 1, attempt: 2)])
        // Running again: the old deadline passes once more.
        for event in firstDeadline { harness.execute(harness.state.timerFired(event)) }
        #expect(resolver.count == 0)
        harness.finish(slot: 0, 1)
        #expect(resolver.succeeded)
    }

    @Test func theDeadlineOfTheAttemptUnderWayEndsIt() {
        var harness = DispatcherHarness(slots: 1)
        let resolver = harness.submit(1, timeout: .milliseconds(200))
        #expect(harness.timers[.timeout(job: 1, attempt: 1)] == .milliseconds(200))
        harness.fire(.timeout(job: 1, attempt: 1))
        #expect(resolver.errorCode == .timedOut)
        #expect(resolver.error?.message.contains("did not finish within 0.2 seconds") == true)
        #expect(harness.link(0).cancelled == [1])
        #expect(harness.timers[.cancelGrace(slot: 0, instance: 1, job: 1)] == .milliseconds(50))
    }

    /// In dispatcher mode a job's time limit starts when a daemon takes it.
    @Test func timeWaitingForADaemonDoesNotCount() {
        var harness = DispatcherHarness(slots: 1)
        harness.submit(1)
        let waiting = harness.submit(2, timeout: .milliseconds(100))
        #expect(harness.deadlines.isEmpty)
        harness.finish(slot: 0, 1)
        #expect(harness.deadlines == [.timeout(job: 2, attempt: 1)])
        #expect(waiting.count == 0)
    }

    @Test func aFinishedJobCancelsItsDeadlineAndALateOneChangesNothing() {
        var harness = DispatcherHarness(slots: 1)
        let resolver = harness.submit(1, timeout: .seconds(5))
        harness.finish(slot: 0, 1)
        #expect(harness.deadlines.isEmpty)
        harness.execute(harness.state.timerFired(.timeout(job: 1, attempt: 1)))
        #expect(resolver.count == 1 && resolver.succeeded)
        #expect(harness.link(0).cancelled.isEmpty)
    }

    @Test func aCancelledWaitingJobResolvesAtOnceAndIsNeverSent() {
        var harness = DispatcherHarness(slots: 1)
        harness.submit(1)
        let waiting = harness.submit(2)
        harness.execute(harness.state.cancel(job: 2))
        #expect(waiting.errorCode == .cancelled)
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).runIDs == [1])
        #expect(harness.state.status(url: "").waiting == 0)
    }

    @Test func aCancelledRunningJobResolvesAtOnceAndItsDaemonGetsAGracePeriod() {
        var harness = DispatcherHarness(slots: 1)
        let resolver = harness.submit(1)
        harness.execute(harness.state.cancel(job: 1))
        #expect(resolver.errorCode == .cancelled)
        #expect(harness.link(0).cancelled == [1])
        #expect(harness.timers[.cancelGrace(slot: 0, instance: 1, job: 1)] != nil)
        // Still busy until the daemon answers: the next job waits.
        harness.submit(2)
        #expect(harness.link(0).runIDs == [1])
        harness.fire(.cancelGrace(slot: 0, instance: 1, job: 1))
        #expect(harness.killed(harness.pid(slot: 0)))
        // Its death is the host's doing: not a crash, and the waiting job goes to the replacement.
        harness.crashAndReplace(slot: 0, signal: SIGKILL)
        #expect(harness.state.slots[0].crashed == 0)
        #expect(harness.link(0).runIDs == [2])
        #expect(resolver.count == 1)
    }

    @Test func aDaemonThatStopsACancelledJobInTimeIsKept() {
        var harness = DispatcherHarness(slots: 1)
        harness.submit(1)
        harness.execute(harness.state.cancel(job: 1))
        harness.submit(2)
        harness.finish(slot: 0, 1, failure: FailureReport(reason: .cancelled, errorType: "Swift.CancellationError", message: "cancelled", location: "x"))
        #expect(harness.link(0).runIDs == [1, 2])
        harness.fire(.cancelGrace(slot: 0, instance: 1, job: 1))
        #expect(harness.signals.isEmpty)
    }

    @Test func aFailureCarriesTheDaemonsReportAndWhichDaemonItWas() {
        var harness = DispatcherHarness(slots: 1)
        let resolver = harness.submit(1)
        harness.finish(slot: 0, 1, failure: thrownReport)
        let error = resolver.error
        #expect(error?.code == .remote)
        #expect(error?.message == "boom")
        #expect(error?.remoteErrorType == "Tests.Boom")
        #expect(error?.daemon == DaemonIdentity(index: 0, instance: 1, pid: harness.pid(slot: 0)))
    }

    @Test func answersFromAReplacedDaemonOrForUnknownJobsAreIgnored() {
        var harness = DispatcherHarness(slots: 1)
        let resolver = harness.submit(1, retries: 1)
        harness.crashAndReplace(slot: 0)
        harness.execute(harness.state.jobFinished(slot: 0, instance: 1, requestID: 1, completion: .value(Envelope(payload: ByteBuffer())), at: harness.now))
        #expect(resolver.count == 0, "the old instance's answer")
        harness.finish(slot: 0, 999)
        #expect(resolver.count == 0)
        #expect(harness.state.slots[0].complete == 0)
        harness.finish(slot: 0, 1)
        #expect(resolver.succeeded)
    }

    @Test func stopResolvesEveryJobExactlyOnce() {
        var harness = DispatcherHarness(slots: 2)
        let resolvers = (1...6).map { harness.submit(UInt64($0)) }
        harness.finish(slot: 0, 1)
        harness.execute(harness.state.stop())
        #expect(resolvers.map(\.count) == [1, 1, 1, 1, 1, 1])
        #expect(resolvers.dropFirst().allSatisfy { $0.errorCode == .stopped })
        // Late answers and exits change nothing.
        harness.finish(slot: 1, 2)
        harness.exit(slot: 1, .exited(code: 0))
        #expect(resolvers.map(\.count) == [1, 1, 1, 1, 1, 1])
        harness.execute(harness.state.submit(id: 9, jobType: "T", envelope: Envelope(payload: ByteBuffer()), resolver: resolvers[0], timeout: nil, retries: 0))
        if case .failure(let error)? = resolvers[0].outcomes.withLock({ $0.last }) {
            #expect(error.code == .stopped)
        } else {
            Issue.record("a job submitted after stop did not fail")
        }
    }

    /// A busy daemon has its job cancelled and a grace to exit; an idle one is just told
    /// to shut down. The stop is over once every process is gone.
    @Test func stopTellsDaemonsToShutDownAndWaitsForTheirExits() async {
        var harness = DispatcherHarness(slots: 2)
        harness.submit(1)
        harness.execute(harness.state.stop())
        #expect(harness.link(0).cancelled == [1])
        #expect(harness.link(0).shutdowns == 1 && harness.link(1).shutdowns == 1)
        #expect(harness.timers[.stopGrace(slot: 0, instance: 1)] != nil)
        #expect(harness.timers[.stopGrace(slot: 1, instance: 1)] == nil)
        await withCheckedContinuation { continuation in
            harness.execute(harness.state.awaitStopped(continuation))
            #expect(harness.stopsResumed == 0)
            harness.exit(slot: 1, .exited(code: 0))
            harness.fire(.stopGrace(slot: 0, instance: 1))
            #expect(harness.killed(harness.pid(slot: 0)))
            #expect(harness.stopsResumed == 0)
            harness.exit(slot: 0, .signaled(signal: SIGKILL))
        }
        #expect(harness.stopsResumed == 1)
        #expect(harness.state.killRemaining().isEmpty)
    }

    @Test func aSlotThatKeepsFailingToStartIsGivenUpAndItsJobsFail() {
        var harness = DispatcherHarness(slots: 1, connect: false)
        let resolver = harness.submit(1)
        for _ in 1...3 {
            harness.exit(slot: 0, .exited(code: 78), output: "bootstrap missing")
        }
        #expect(resolver.errorCode == .launchFailed)
        #expect(resolver.error?.message.contains("bootstrap missing") == true)
        #expect(harness.state.slots[0].hasFailed)
        #expect(harness.launches.count == 3)
        // Every slot gone: new jobs fail at once.
        let late = harness.submit(2)
        #expect(late.errorCode == .launchFailed)
    }

    @Test func aLaunchThatFailsIsRetriedThenGivenUp() {
        var harness = DispatcherHarness(slots: 2, connect: false)
        for _ in 1...3 {
            harness.execute(harness.state.launched(slot: 0, instance: harness.state.slots[0].instance, result: .failure(SpawnError("/nowhere", errno: ENOENT, step: "posix_spawn"))))
        }
        #expect(harness.state.slots[0].hasFailed)
        #expect(harness.state.slots[0].lastFailure?.contains("/nowhere") == true)
        // The other slot still runs jobs.
        harness.connect(slot: 1)
        let resolver = harness.submit(1)
        harness.finish(slot: 1, 1)
        #expect(resolver.succeeded)
    }

    @Test func everywhereRunsFirstOnEachDaemonThenTheQueue() {
        var harness = DispatcherHarness(slots: 2)
        harness.submit(1)
        let setups = [FakeResolver(), FakeResolver()]
        harness.execute(harness.state.everywhere(jobType: "Setup", envelope: Envelope(payload: ByteBuffer()), resolver: { setups[$0] }))
        let setupIDs = harness.links.map { $0!.runIDs.last! }
        #expect(harness.link(0).runIDs == [1])
        #expect(harness.link(1).runIDs.count == 1, "the idle daemon runs its setup at once")
        harness.finish(slot: 1, setupIDs[1])
        harness.submit(2)
        #expect(harness.link(1).runIDs.last == 2)
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).runIDs.count == 2, "setup before more work")
        harness.finish(slot: 0, harness.link(0).runIDs.last!)
        #expect(setups.allSatisfy { $0.succeeded })
    }

    @Test func aReplacementRunsTheSetupBeforeAnythingElse() {
        var harness = DispatcherHarness(slots: 1)
        let setup = FakeResolver()
        harness.execute(harness.state.everywhere(jobType: "Setup", envelope: Envelope(payload: ByteBuffer()), resolver: { _ in setup }))
        harness.finish(slot: 0, harness.link(0).runIDs[0])
        let job = harness.submit(1, retries: 1)
        harness.crashAndReplace(slot: 0)
        let sent = harness.link(0).messages.compactMap { if case .run(let request) = $0 { request.jobType } else { nil } }
        #expect(sent == ["Setup"])
        harness.finish(slot: 0, harness.link(0).runIDs[0])
        #expect(harness.link(0).runIDs.last == 1)
        harness.finish(slot: 0, 1)
        #expect(job.succeeded && setup.count == 1)
    }

    @Test func aSetupThatKillsEveryNewDaemonGivesTheSlotUp() {
        var harness = DispatcherHarness(slots: 1)
        harness.execute(harness.state.everywhere(jobType: "Setup", envelope: Envelope(payload: ByteBuffer()), resolver: { _ in FakeResolver() }))
        let job = harness.submit(1)
        for _ in 1...3 where !harness.state.slots[0].hasFailed {
            harness.exit(slot: 0, .signaled(signal: SIGABRT))
            if !harness.state.slots[0].hasFailed { harness.connect(slot: 0) }
        }
        #expect(harness.state.slots[0].hasFailed)
        #expect(job.errorCode == .launchFailed)
    }
}
