import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// A daemon connection as the state machine sees it, recording what it is sent.
final class FakeLink: DaemonLink {
    let sent = Mutex<[OutgoingMessage]>([])
    let closes = Atomic<Int>(0)

    func enqueue(_ message: OutgoingMessage) { sent.withLock { $0.append(message) } }
    func enqueueClose() { closes.add(1, ordering: .relaxed) }
    func flush() {}
    var peerAddress: String? { nil }
    var lentSharedMemoryBytes: Int { 0 }

    /// What was sent, as wire messages.
    var messages: [WireMessage] {
        sent.withLock { $0.map { $0.message(announcing: $0.attachments.map { AttachmentInfo(byteCount: UInt64($0.segment.byteCount)) }) } }
    }

    /// The ids of the jobs it was sent, in order.
    var runIDs: [UInt64] {
        messages.compactMap { if case .run(let request) = $0 { request.requestID } else { nil } }
    }

    /// The calls it was sent (creations included), in order.
    var calls: [CallRequest] {
        messages.compactMap { if case .call(let request) = $0 { request } else { nil } }
    }

    /// The requests it was told to cancel.
    var cancelled: [UInt64] {
        messages.compactMap { if case .cancel(let id) = $0 { id } else { nil } }
    }

    /// How many times it was told to shut down.
    var shutdowns: Int {
        messages.filter { $0 == .shutdown }.count
    }

    var wasClosed: Bool { closes.load(ordering: .relaxed) > 0 }
}

/// Records what it is resolved with.
final class FakeResolver: JobResolver {
    let outcomes = Mutex<[JobOutcome]>([])

    func resolve(_ outcome: JobOutcome) -> Bool {
        outcomes.withLock { $0.append(outcome) }
        return true
    }

    var count: Int { outcomes.withLock { $0.count } }

    /// The error of the first resolution, if it failed.
    var error: JobError? {
        outcomes.withLock { if case .failure(let error)? = $0.first { error } else { nil } }
    }

    var errorCode: JobError.Code? { error?.code }

    /// Whether it resolved once, with a value.
    var succeeded: Bool {
        outcomes.withLock { outcomes in
            guard outcomes.count == 1, case .value = outcomes[0] else { return false }
            return true
        }
    }
}

/// Drives a `DispatcherState` the way its shell does, with fake links and no processes,
/// and keeps what it was asked to do: launches, signals, live timers.
struct DispatcherHarness {
    var state: DispatcherState
    /// The current link of each slot (nil before it connects).
    var links: [FakeLink?]
    /// The token of each slot's latest launch.
    var tokens: [Int: String] = [:]
    var launches: [(slot: Int, instance: Int)] = []
    var signals: [(pid: Int32, signal: Int32)] = []
    /// Timers scheduled and neither fired nor cancelled, with their delay.
    var timers: [TimerEvent: Duration] = [:]
    var readiness: [Result<Void, DaemonsError>] = []
    var stopsResumed = 0
    var drainsResumed = 0
    /// What the state machine told the observer, in order.
    var events: [PoolEvent] = []
    /// The time the state machine is told an answer arrives at: each answer comes `jobTime`
    /// after the one before (long enough, by default, that a dispatcher sends one job at a time).
    var now = ContinuousClock.now
    var jobTime = Duration.milliseconds(10)

    /// A pool of `slots` slots sized by `scaling` (all launched by default); what was
    /// launched is connected too unless `connect` is false.
    init(
        slots: Int, mode: DispatcherState.Mode = .dispatcher, maxStartFailures: Int = 3, launchesProcesses: Bool = true, scaling: ScalingPolicy? = nil,
        reportsStarts: Bool = false, connect: Bool = true
    ) {
        let counter = Atomic<Int>(0)
        state = DispatcherState(slotCount: slots, mode: mode, cancellationGrace: .milliseconds(50), maxStartFailures: maxStartFailures,
                                launchesProcesses: launchesProcesses, scaling: scaling, launcherDescription: "test launcher", reportsStarts: reportsStarts) {
            "token-\(counter.add(1, ordering: .relaxed).newValue)"
        }
        links = Array(repeating: nil, count: slots)
        execute(state.start())
        if connect {
            for slot in 0..<slots where state.slots[slot].isStarting { self.connect(slot: slot) }
        }
    }

    /// The pid the fake launcher gives an instance.
    func pid(slot: Int, instance: Int? = nil) -> Int32 {
        Int32(1000 + slot * 100 + (instance ?? state.slots[slot].instance))
    }

    /// The slot's process started, and its daemon connected with the slot's latest token.
    mutating func connect(slot: Int) {
        if state.launchesProcesses {
            execute(state.launched(slot: slot, instance: state.slots[slot].instance, result: .success(pid(slot: slot))))
        }
        _ = authenticate(slot: slot, token: tokens[slot]!)
    }

    /// A daemon presents `token`; returns the admission.
    mutating func authenticate(slot: Int, token: String) -> DispatcherState.Admission {
        let link = FakeLink()
        let (admission, actions) = state.daemonAuthenticated(token: token, pid: pid(slot: slot), connect: { _ in link }, welcome: { index, instance in
            .welcome(Welcome(daemonIndex: UInt32(index), instance: UInt32(instance), proof: []))
        })
        if case .accepted(let index, _) = admission { links[index] = link }
        execute(actions)
        return admission
    }

    /// The current link of `slot`.
    func link(_ slot: Int) -> FakeLink { links[slot]! }

    @discardableResult
    mutating func submit(_ id: UInt64, timeout: Duration? = nil, retries: Int? = 0) -> FakeResolver {
        let resolver = FakeResolver()
        execute(state.submit(id: id, jobType: "T", envelope: Envelope(payload: ByteBuffer()), resolver: resolver, timeout: timeout, retries: retries))
        return resolver
    }

    /// The daemon of `slot` answers `id` with a value (or `failure`).
    mutating func finish(slot: Int, _ id: UInt64, failure: FailureReport? = nil) {
        let completion: Completion = failure.map { .failure($0) } ?? .value(Envelope(payload: ByteBuffer()))
        now += jobTime
        execute(state.jobFinished(slot: slot, instance: state.slots[slot].instance, requestID: id, completion: completion, at: now))
    }

    /// The process of `slot` ends with `termination`, and then (unless `closing` is false)
    /// its connection closes, as a dead process's does.
    mutating func exit(slot: Int, _ termination: ProcessTermination, output: String? = nil, closing: Bool = true) {
        let instance = state.slots[slot].instance
        execute(state.processExited(slot: slot, instance: instance, termination: termination, output: output))
        if closing { execute(state.connectionClosed(slot: slot, instance: instance, reason: nil)) }
        links[slot] = nil
    }

    /// The process of `slot` crashes, and its replacement connects.
    mutating func crashAndReplace(slot: Int, signal: Int32 = SIGSEGV) {
        exit(slot: slot, .signaled(signal: signal))
        connect(slot: slot)
    }

    /// Fires a timer the state machine scheduled.
    mutating func fire(_ event: TimerEvent) {
        timers.removeValue(forKey: event)
        execute(state.timerFired(event))
    }

    /// The deadlines of jobs and calls scheduled now.
    var deadlines: [TimerEvent] {
        timers.keys.filter(\.isCancellable).sorted { "\($0)" < "\($1)" }
    }

    /// Carries out actions the way the shell does, keeping what they asked for.
    mutating func execute(_ actions: [DispatcherAction]) {
        for action in actions {
            switch action {
            case .send(let link, let message), .queue(let link, let message): link.enqueue(message)
            case .close(let link): link.enqueueClose()
            case .resolve(let resolver, let outcome): resolver.resolve(outcome)
            case .launch(let slot, let instance, let token):
                tokens[slot] = token
                launches.append((slot, instance))
            case .signal(let pid, let signal): signals.append((pid, signal))
            case .schedule(let event, let delay): timers[event] = delay
            case .cancelTimer(let event): timers.removeValue(forKey: event)
            case .resumeReadiness(let waiters, let result):
                readiness.append(result)
                for waiter in waiters { waiter.resume(with: result.mapError { $0 as any Error }) }
            case .resumeStopped(let waiters):
                stopsResumed += 1
                for waiter in waiters { waiter.resume() }
            case .resumeDrained(let waiters):
                drainsResumed += 1
                for waiter in waiters { waiter.resume() }
            case .observe(let event): events.append(event)
            }
        }
        // As the shell does after every event.
        if state.awaitsDrain, case let drained = state.drainedActions(), !drained.isEmpty { execute(drained) }
    }

    /// Whether `pid` was sent SIGKILL.
    func killed(_ pid: Int32) -> Bool {
        signals.contains { $0.pid == pid && $0.signal == SIGKILL }
    }
}

/// A failure a daemon reports for a job that threw.
let thrownReport = FailureReport(reason: .thrown, errorType: "Tests.Boom", message: "boom", location: "here")
