import KapselSharedMemory
import KapselWire
import NIOCore
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// The dispatcher's rules for distributed actors — placement, routing, creation, crashes,
/// re-creation, pooled actors, time limits, releases — on the state machine alone.
@Suite("Dispatcher state machine: actors")
struct DispatcherActorTests {
    static let empty = Envelope(payload: ByteBuffer())

    /// Creates an actor of `serial`; returns its id and the creation's resolver.
    func create(
        _ serial: UInt64, in harness: inout DispatcherHarness, id callID: UInt64, on placement: ActorPlacement = .leastLoaded, restart: RestartPolicy = .never
    ) -> (KapselActorID, FakeResolver) {
        let actor = KapselActorID.host(serial: serial)
        let resolver = FakeResolver()
        let creation = ActorCreation(typeName: "Counter", envelope: Self.empty, placement: placement, restart: restart, pooled: false)
        let call = ActorRoutes.CallRecord(id: callID, kind: .create, actor: actor, name: "Counter", display: "Counter.init", envelope: Self.empty, resolver: resolver, timeout: nil)
        harness.execute(harness.state.actorCall(call, creation: creation))
        return (actor, resolver)
    }

    /// Calls `actor`; returns the call's resolver.
    func call(_ actor: KapselActorID, in harness: inout DispatcherHarness, id callID: UInt64, timeout: Duration? = nil) -> FakeResolver {
        let resolver = FakeResolver()
        let call = ActorRoutes.CallRecord(id: callID, kind: .invoke, actor: actor, name: "add", display: "add(_:)", envelope: Self.empty, resolver: resolver, timeout: timeout)
        harness.execute(harness.state.actorCall(call, creation: nil))
        return resolver
    }

    /// The daemon of `slot` answers call `id`.
    func answer(_ id: UInt64, slot: Int, in harness: inout DispatcherHarness, failure: FailureReport? = nil) {
        let completion: Completion = failure.map { .failure($0) } ?? .value(Self.empty)
        harness.now += harness.jobTime
        harness.execute(harness.state.callFinished(slot: slot, instance: harness.state.slots[slot].instance, requestID: id, completion: completion, at: harness.now))
    }

    @Test func actorsGoToTheDaemonHoldingTheFewest() {
        var harness = DispatcherHarness(slots: 2)
        _ = create(1, in: &harness, id: 101)
        _ = create(2, in: &harness, id: 102)
        _ = create(3, in: &harness, id: 103, on: .daemon(0))
        _ = create(4, in: &harness, id: 104)
        #expect(harness.link(0).calls.map(\.callID) == [101, 103])
        #expect(harness.link(1).calls.map(\.callID) == [102, 104])
    }

    @Test func callsGoStraightToTheActorsDaemonBesideItsJobs() {
        var harness = DispatcherHarness(slots: 1)
        let (actor, created) = create(1, in: &harness, id: 101)
        answer(101, slot: 0, in: &harness)
        #expect(created.succeeded)
        harness.submit(1)
        let first = call(actor, in: &harness, id: 201)
        let second = call(actor, in: &harness, id: 202)
        #expect(harness.link(0).runIDs == [1])
        #expect(harness.link(0).calls.map(\.callID) == [101, 201, 202], "calls do not wait for the job")
        answer(202, slot: 0, in: &harness)
        #expect(second.succeeded && first.count == 0)
    }

    @Test func callsWaitWhileTheActorIsCreated() {
        var harness = DispatcherHarness(slots: 1)
        let (actor, _) = create(1, in: &harness, id: 101)
        let waiting = call(actor, in: &harness, id: 201)
        #expect(harness.link(0).calls.map(\.callID) == [101])
        answer(101, slot: 0, in: &harness)
        #expect(harness.link(0).calls.map(\.callID) == [101, 201])
        answer(201, slot: 0, in: &harness)
        #expect(waiting.succeeded)
    }

    @Test func aFailedCreationFailsTheCallsThatWaitedAndLaterOnes() {
        var harness = DispatcherHarness(slots: 1)
        let (actor, created) = create(1, in: &harness, id: 101)
        let waiting = call(actor, in: &harness, id: 201)
        answer(101, slot: 0, in: &harness, failure: thrownReport)
        #expect(created.errorCode == .remote)
        #expect(waiting.errorCode == .remote)
        #expect(call(actor, in: &harness, id: 202).errorCode == .remote)
    }

    @Test func aCrashFailsCallsUnderWayAndLosesTheActor() {
        var harness = DispatcherHarness(slots: 1)
        let (actor, _) = create(1, in: &harness, id: 101)
        answer(101, slot: 0, in: &harness)
        let running = call(actor, in: &harness, id: 201)
        harness.crashAndReplace(slot: 0)
        #expect(running.errorCode == .crashed)
        let later = call(actor, in: &harness, id: 202)
        #expect(later.errorCode == .actorLost)
        #expect(later.error?.message.contains("was lost with its daemon") == true)
        #expect(harness.link(0).calls.isEmpty, "nothing sent to the replacement")
    }

    @Test func aRecreatedActorIsCreatedFirstOnTheReplacementAndItsCallsWait() {
        var harness = DispatcherHarness(slots: 1)
        let (actor, _) = create(1, in: &harness, id: 101, restart: .recreate)
        answer(101, slot: 0, in: &harness)
        harness.exit(slot: 0, .signaled(signal: SIGSEGV))
        let waiting = call(actor, in: &harness, id: 201)
        harness.connect(slot: 0)
        let sent = harness.link(0).calls
        #expect(sent.map(\.kind) == [.create])
        answer(sent[0].callID, slot: 0, in: &harness)
        #expect(harness.link(0).calls.map(\.callID).last == 201)
        answer(201, slot: 0, in: &harness)
        #expect(waiting.succeeded)
    }

    /// A replacement that fails to start before the re-creation reached it: the next one
    /// gets the creation once, not once per failed start.
    @Test func aRecreationWaitingThroughFailedStartsIsSentOnce() {
        var harness = DispatcherHarness(slots: 1)
        let (_, _) = create(1, in: &harness, id: 101, restart: .recreate)
        answer(101, slot: 0, in: &harness)
        harness.exit(slot: 0, .signaled(signal: SIGSEGV))
        harness.exit(slot: 0, .exited(code: 78), output: "a bad start")
        harness.connect(slot: 0)
        #expect(harness.link(0).calls.map(\.kind) == [.create])
    }

    /// A daemon told to retire while an actor call runs is dismissed once the call ends.
    @Test func aRetiringDaemonIsDismissedOnceItsLastCallEnds() {
        var harness = DispatcherHarness(slots: 1)
        let (actor, _) = create(1, in: &harness, id: 101)
        answer(101, slot: 0, in: &harness)
        let running = call(actor, in: &harness, id: 201)
        harness.execute(harness.state.restart(slot: 0).actions)
        #expect(harness.link(0).shutdowns == 0)
        answer(201, slot: 0, in: &harness)
        #expect(running.succeeded)
        #expect(harness.link(0).shutdowns == 1)
    }

    @Test func callsToAPooledActorGoThroughTheQueueToTheFirstIdleDaemon() {
        var harness = DispatcherHarness(slots: 2)
        let actor = KapselActorID.host(serial: 7)
        harness.state.registerPooled(actor, creation: ActorCreation(typeName: "Calculator", envelope: Self.empty, placement: .leastLoaded, restart: .recreate, pooled: true))
        harness.submit(1)
        let pooled = (201...203).map { call(actor, in: &harness, id: UInt64($0)) }
        #expect(harness.link(0).calls.isEmpty)
        #expect(harness.link(1).calls.map(\.callID) == [201])
        answer(201, slot: 1, in: &harness)
        #expect(harness.link(1).calls.map(\.callID) == [201, 202])
        harness.finish(slot: 0, 1)
        #expect(harness.link(0).calls.map(\.callID) == [203])
        #expect(pooled[0].succeeded)
    }

    /// A pooled call cancelled while its daemon runs it, and answered later: the answer
    /// frees the daemon (it is not held until the grace kills it).
    @Test func aCancelledPooledCallAnsweredLateFreesItsDaemon() {
        var harness = DispatcherHarness(slots: 1)
        let actor = KapselActorID.host(serial: 7)
        harness.state.registerPooled(actor, creation: ActorCreation(typeName: "Calculator", envelope: Self.empty, placement: .leastLoaded, restart: .recreate, pooled: true))
        let cancelled = call(actor, in: &harness, id: 201)
        harness.execute(harness.state.cancelCall(201))
        #expect(cancelled.errorCode == .cancelled)
        harness.submit(1)
        answer(201, slot: 0, in: &harness, failure: FailureReport(reason: .cancelled, errorType: "CancellationError", message: "", location: ""))
        #expect(harness.link(0).runIDs == [1])
        harness.fire(.cancelGrace(slot: 0, instance: 1, job: 201))
        #expect(harness.signals.isEmpty)
        #expect(cancelled.count == 1)
    }

    @Test func aCallPastItsTimeLimitIsCancelledButItsDaemonLives() {
        var harness = DispatcherHarness(slots: 1)
        let (actor, _) = create(1, in: &harness, id: 101)
        answer(101, slot: 0, in: &harness)
        let slow = call(actor, in: &harness, id: 201, timeout: .milliseconds(300))
        #expect(harness.deadlines == [.callTimeout(call: 201)])
        harness.fire(.callTimeout(call: 201))
        #expect(slow.errorCode == .timedOut)
        #expect(harness.link(0).cancelled == [201])
        #expect(harness.timers.keys.allSatisfy { if case .cancelGrace = $0 { false } else { true } })
        answer(201, slot: 0, in: &harness)
        #expect(slow.count == 1)
        let quick = call(actor, in: &harness, id: 202, timeout: .seconds(1))
        answer(202, slot: 0, in: &harness)
        #expect(quick.succeeded)
        #expect(harness.deadlines.isEmpty, "an answered call's time limit is cancelled")
    }

    @Test func releasedActorsAreReleasedInTheirDaemonOnce() {
        var harness = DispatcherHarness(slots: 2)
        let (first, _) = create(1, in: &harness, id: 101)
        let (second, _) = create(2, in: &harness, id: 102)
        answer(101, slot: 0, in: &harness)
        answer(102, slot: 1, in: &harness)
        let releases = [ActorRelease(actor: first.wire, count: 1), ActorRelease(actor: second.wire, count: 2)]
        harness.execute(harness.state.releaseActors(releases))
        #expect(harness.link(0).messages.last == .releaseActors([releases[0]]))
        #expect(harness.link(1).messages.last == .releaseActors([releases[1]]))
        harness.execute(harness.state.releaseActors(releases))
        #expect(harness.link(0).messages.filter { if case .releaseActors = $0 { true } else { false } }.count == 1)
        #expect(call(first, in: &harness, id: 201).errorCode == .actorLost)
    }

    /// An actor a daemon created itself is known by its id alone: alive while its
    /// creator's instance runs, lost once that daemon was replaced.
    @Test func anActorADaemonCreatedIsRoutedByItsIdUntilItsDaemonIsReplaced() {
        var harness = DispatcherHarness(slots: 2)
        let made = KapselActorID(WireActorID(creator: 2, instance: 1, serial: 5))
        let alive = call(made, in: &harness, id: 201)
        #expect(harness.link(1).calls.map(\.callID) == [201])
        answer(201, slot: 1, in: &harness)
        #expect(alive.succeeded)
        let stale = KapselActorID(WireActorID(creator: 1, instance: 0, serial: 6))
        #expect(call(stale, in: &harness, id: 202).errorCode == .actorLost)
        #expect(call(.host(serial: 99), in: &harness, id: 203).errorCode == .actorLost, "never created here")
    }

    @Test func stoppingFailsEveryCallUnderWay() {
        var harness = DispatcherHarness(slots: 1)
        let (actor, created) = create(1, in: &harness, id: 101)
        let waiting = call(actor, in: &harness, id: 201, timeout: .seconds(1))
        harness.execute(harness.state.stop())
        #expect(created.errorCode == .stopped && waiting.errorCode == .stopped)
        #expect(harness.deadlines.isEmpty)
        #expect(call(actor, in: &harness, id: 202).errorCode == .stopped)
    }

    @Test func actorsOfASlotGivenUpAreLost() {
        var harness = DispatcherHarness(slots: 2)
        let (actor, _) = create(1, in: &harness, id: 101, on: .daemon(0), restart: .recreate)
        answer(101, slot: 0, in: &harness)
        harness.exit(slot: 0, .signaled(signal: SIGSEGV))
        let waiting = call(actor, in: &harness, id: 201)
        for _ in 1...3 { harness.exit(slot: 0, .exited(code: 78), output: "cannot start") }
        #expect(harness.state.slots[0].hasFailed)
        #expect(waiting.errorCode == .actorLost)
        #expect(call(actor, in: &harness, id: 202).errorCode == .actorLost)
        let (_, elsewhere) = create(2, in: &harness, id: 103, on: .daemon(0))
        #expect(elsewhere.errorCode == .daemonsUnavailable)
    }
}
