import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// The dispatcher's rules, checked on the state machine alone: no processes, no sockets.
@Suite("Dispatcher state machine")
struct DispatcherStateTests {
    final class FakeLink: DaemonLink {
        let sent = Mutex<[WireMessage]>([])
        func enqueue(_ message: WireMessage, attachments: [SharedStorage]) { sent.withLock { $0.append(message) } }
        func enqueueClose() {}
        func flush() {}
        var peerAddress: String? { nil }
        var runIDs: [UInt64] {
            sent.withLock { $0.compactMap { if case .run(let request) = $0 { request.requestID } else { nil } } }
        }
    }

    final class FakeResolver: JobResolver {
        let outcomes = Mutex<[JobOutcome]>([])
        func resolve(_ outcome: JobOutcome) -> Bool {
            outcomes.withLock { $0.append(outcome) }
            return true
        }
        var count: Int { outcomes.withLock { $0.count } }
        var errorCode: JobError.Code? {
            outcomes.withLock { if case .failure(let error)? = $0.first { error.code } else { nil } }
        }
    }

    struct Harness {
        var state: DispatcherState
        var links: [FakeLink] = []
        var tokens: [String] = []

        init(slots: Int, mode: DispatcherState.Mode) {
            state = DispatcherState(slotCount: slots, mode: mode, cancellationGrace: .milliseconds(50), maxStartFailures: 3) {
                String(UInt64.random(in: 0 ... .max))
            }
            for action in state.start() {
                if case .launch(_, _, let token) = action { tokens.append(token) }
            }
            for (index, token) in tokens.enumerated() { connect(slot: index, token: token) }
        }

        mutating func connect(slot: Int, token: String) {
            _ = state.launched(slot: slot, instance: state.slots[slot].instance, result: .success(Int32(1000 + slot)))
            let link = FakeLink()
            if links.count > slot { links[slot] = link } else { links.append(link) }
            let (_, actions) = state.daemonAuthenticated(token: token, pid: Int32(1000 + slot), connect: { _ in link }, welcome: { index, instance in
                .welcome(Welcome(daemonIndex: UInt32(index), instance: UInt32(instance), proof: []))
            })
            execute(actions)
        }

        mutating func submit(_ id: UInt64, retries: Int = 0) -> FakeResolver {
            let resolver = FakeResolver()
            execute(state.submit(id: id, jobType: "T", payload: ByteBuffer(), resolver: resolver, timeout: nil, retries: retries))
            return resolver
        }

        mutating func finish(slot: Int, _ id: UInt64) {
            execute(state.jobFinished(slot: slot, instance: state.slots[slot].instance, result: RunResult(requestID: id, outcome: .value(ByteBuffer()))))
        }

        /// Carries out sends and resolutions the way the shell does; returns new launch tokens.
        @discardableResult
        func execute(_ actions: [DispatcherAction]) -> [String] {
            var launched: [String] = []
            for action in actions {
                switch action {
                case .send(let link, let message, let attachments): link.enqueue(message, attachments: attachments)
                case .resolve(let resolver, let outcome): resolver.resolve(outcome)
                case .launch(_, _, let token): launched.append(token)
                default: break
                }
            }
            return launched
        }
    }

    @Test func jobsGoFirstInFirstOutToTheFirstIdleDaemon() {
        var harness = Harness(slots: 2, mode: .dispatcher)
        let resolvers = (1...5).map { harness.submit(UInt64($0)) }
        #expect(harness.links[0].runIDs == [1])
        #expect(harness.links[1].runIDs == [2])
        harness.finish(slot: 1, 2)
        #expect(harness.links[1].runIDs == [2, 3])
        harness.finish(slot: 0, 1)
        #expect(harness.links[0].runIDs == [1, 4])
        harness.finish(slot: 0, 4)
        #expect(harness.links[0].runIDs == [1, 4, 5])
        #expect(resolvers.map(\.count) == [1, 1, 0, 1, 0])
    }

    /// Resolving runs the submitter's callbacks (decoding, starting more work): the
    /// daemon's next job is sent before that, not after.
    @Test func aDaemonGetsItsNextJobBeforeTheFinishedOneResolves() {
        var harness = Harness(slots: 1, mode: .dispatcher)
        let first = harness.submit(1)
        _ = harness.submit(2)
        let actions = harness.state.jobFinished(slot: 0, instance: harness.state.slots[0].instance, result: RunResult(requestID: 1, outcome: .value(ByteBuffer())))
        let order = actions.compactMap { action -> String? in
            switch action {
            case .send(_, .run(let request), _): "send \(request.requestID)"
            case .resolve(let resolver, _): resolver === first ? "resolve 1" : "resolve ?"
            default: nil
            }
        }
        #expect(order == ["send 2", "resolve 1"])
    }

    @Test func roundRobinSendsEverythingAtOnceInTurn() {
        var harness = Harness(slots: 2, mode: .roundRobin)
        _ = (1...5).map { harness.submit(UInt64($0)) }
        #expect(harness.links[0].runIDs == [1, 3, 5])
        #expect(harness.links[1].runIDs == [2, 4])
    }

    @Test func aCrashFailsTheRunningJobAndRequeuesTheRestInOrder() {
        var harness = Harness(slots: 1, mode: .roundRobin)
        let resolvers = (1...3).map { harness.submit(UInt64($0)) }
        let actions = harness.state.processExited(slot: 0, instance: 1, termination: .signaled(signal: SIGSEGV), output: nil)
        let tokens = harness.execute(actions)
        #expect(resolvers[0].errorCode == .crashed)
        #expect(resolvers[1].count == 0 && resolvers[2].count == 0)
        #expect(tokens.count == 1)
        harness.connect(slot: 0, token: tokens[0])
        #expect(harness.links[0].runIDs == [2, 3])
        #expect(harness.state.slots[0].instance == 2)
        #expect(harness.state.slots[0].crashed == 1)
    }

    @Test func retriesPutACrashedJobBackAtTheFront() {
        var harness = Harness(slots: 1, mode: .dispatcher)
        let first = harness.submit(1, retries: 1)
        let second = harness.submit(2)
        let tokens = harness.execute(harness.state.processExited(slot: 0, instance: 1, termination: .signaled(signal: SIGKILL), output: nil))
        #expect(first.count == 0)
        harness.connect(slot: 0, token: tokens[0])
        #expect(harness.links[0].runIDs == [1])
        harness.finish(slot: 0, 1)
        #expect(harness.links[0].runIDs == [1, 2])
        #expect(first.count == 1 && second.count == 0)
    }

    @Test func stopResolvesEveryJobExactlyOnce() {
        var harness = Harness(slots: 2, mode: .dispatcher)
        let resolvers = (1...6).map { harness.submit(UInt64($0)) }
        harness.finish(slot: 0, 1)
        harness.execute(harness.state.stop())
        #expect(resolvers.map(\.count) == [1, 1, 1, 1, 1, 1])
        #expect(resolvers.dropFirst().allSatisfy { $0.errorCode == .stopped })
        // Late answers and exits change nothing.
        harness.finish(slot: 1, 2)
        harness.execute(harness.state.processExited(slot: 1, instance: 1, termination: .exited(code: 0), output: nil))
        #expect(resolvers.map(\.count) == [1, 1, 1, 1, 1, 1])
    }

    @Test func aSlotThatKeepsFailingToStartIsGivenUpAndItsJobsFail() {
        var state = DispatcherState(slotCount: 1, mode: .dispatcher, cancellationGrace: .milliseconds(50), maxStartFailures: 3) { "t" }
        _ = state.start()
        let resolver = FakeResolver()
        _ = state.submit(id: 1, jobType: "T", payload: ByteBuffer(), resolver: resolver, timeout: nil, retries: 0)
        var actions: [DispatcherAction] = []
        for instance in 1...3 {
            actions += state.processExited(slot: 0, instance: instance, termination: .exited(code: 78), output: "bootstrap missing")
        }
        for action in actions { if case .resolve(let target, let outcome) = action { target.resolve(outcome) } }
        #expect(resolver.errorCode == .daemonsUnavailable)
        #expect(state.slots[0].phase == .failed)
        #expect(state.slots[0].lastFailure?.contains("bootstrap missing") == true)
    }

    @Test func aCancelledRunningJobResolvesAtOnceAndItsDaemonGetsAGracePeriod() {
        var harness = Harness(slots: 1, mode: .dispatcher)
        let resolver = harness.submit(1)
        let actions = harness.state.cancel(job: 1)
        harness.execute(actions)
        #expect(resolver.errorCode == .cancelled)
        #expect(harness.links[0].sent.withLock { $0.contains(.cancel(requestID: 1)) })
        #expect(actions.contains { if case .schedule(.cancelGrace(0, 1, 1), _) = $0 { true } else { false } })
        // Still busy until the daemon answers: the next job waits.
        _ = harness.submit(2)
        #expect(harness.links[0].runIDs == [1])
        let kill = harness.state.timerFired(.cancelGrace(slot: 0, instance: 1, job: 1))
        #expect(kill.contains { if case .signal(1000, SIGKILL) = $0 { true } else { false } })
    }
}
