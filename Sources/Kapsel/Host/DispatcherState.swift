import DequeModule
import KapselSharedMemory
import KapselWire
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The dispatcher's state machine: which jobs wait, which daemon runs what, and what
/// happens when daemons answer, time out, crash or connect.
///
/// It performs no I/O. Each event returns the `DispatcherAction`s to carry out, so the
/// rules stay in one place and the shell (`Dispatcher`) is thin. The invariant that
/// makes every job resolve exactly once: a job is in `jobs` until the moment an
/// action resolves it, and only code that removes it from `jobs` emits that action.
struct DispatcherState {
    /// How jobs are handed to daemons.
    enum Mode: Sendable {
        /// FIFO queue; a job goes to the first idle daemon, one at a time.
        case dispatcher
        /// Each job goes at once to the next daemon in turn and waits there.
        case roundRobin
    }

    /// One submitted, unresolved job.
    struct Record {
        let id: UInt64
        let jobType: String
        let payload: ByteBuffer
        /// Shared memory the job refers to, sent with it (again, on a retry).
        let attachments: [SharedStorage]
        let resolver: any JobResolver
        let timeout: Duration?
        var retriesLeft: Int
        /// For `everywhere` setup jobs: which template this runs.
        let setupTemplate: Int?
        /// The slot running it, once sent.
        var slot: Int?
        /// For a call to a pooled actor: the actor and the call target.
        var call: (actor: KapselActorID, target: String)? = nil
    }

    /// An `everywhere` job, re-run first on every daemon that starts later.
    struct SetupTemplate {
        let jobType: String
        let payload: ByteBuffer
        let attachments: [SharedStorage]
    }

    /// `parked`: its daemon retired when idle; a daemon is started again when jobs wait.
    enum SlotPhase { case starting, online, parked, failed, stopped }

    /// Why the host killed a daemon itself (so its exit is not reported as a crash).
    enum KillCause { case unresponsive, connectionFailed(String) }

    struct Slot {
        let index: Int
        var instance = 0
        var phase = SlotPhase.starting
        var pid: Int32?
        var token = ""
        var link: (any DaemonLink)?
        /// The descriptor channel to the current process, for its shared memory.
        var descriptors: DescriptorChannel?
        /// Sent and not yet answered, in send order; the daemon runs them in that order.
        var inFlight: Deque<UInt64> = []
        /// Waiting for this slot only: setup jobs, and round-robin assignments.
        var pinned: Deque<UInt64> = []
        var killCause: KillCause?
        var assigned = 0
        var complete = 0
        var crashed = 0
        var startFailures = 0
        var lastFailure: String?
        /// Actor calls (and creations) sent to this daemon and not answered.
        var directCalls: Set<UInt64> = []
        /// Actor calls (and creations) waiting for this daemon to come online.
        var waitingCalls: [UInt64] = []
        /// Live actors, as the daemon last reported.
        var actorCount = 0
        /// Set when the daemon said it retires: it gets no more work.
        var retiring: DaemonExitCode?

        var identity: DaemonIdentity { DaemonIdentity(index: index, instance: instance, pid: pid) }
    }

    enum Phase { case running, stopping }

    let mode: Mode
    let cancellationGrace: Duration
    let maxStartFailures: Int
    private(set) var phase = Phase.running
    var slots: [Slot]
    var jobs: [UInt64: Record] = [:]
    var queue: Deque<UInt64> = []
    private var templates: [SetupTemplate] = []
    private var tokens: [String: Int] = [:]
    private var nextInternalID: UInt64 = 1 << 63
    private var roundRobinNext = 0
    private var connections = 0
    private var rejected = 0
    private var lastRejection: String?
    /// Where each actor the host knows lives, and its state.
    var routes: [KapselActorID: ActorRoute] = [:]
    /// Actor calls and creations not resolved yet (pooled calls are in `jobs`).
    var calls: [UInt64: CallRecord] = [:]
    private var readinessWaiters: [CheckedContinuation<Void, any Error>] = []
    private var stopWaiters: [CheckedContinuation<Void, Never>] = []
    private let makeToken: @Sendable () -> String

    /// Whether each slot is a process the host launched and watches; false for daemons
    /// deployed by hand, which exist for the host only as their connections.
    let launchesProcesses: Bool

    init(
        slotCount: Int, mode: Mode, cancellationGrace: Duration, maxStartFailures: Int, launchesProcesses: Bool = true,
        makeToken: @escaping @Sendable () -> String
    ) {
        self.launchesProcesses = launchesProcesses
        self.mode = mode
        self.cancellationGrace = cancellationGrace
        self.maxStartFailures = maxStartFailures
        self.makeToken = makeToken
        self.slots = (0..<slotCount).map { Slot(index: $0) }
    }

    // MARK: Starting

    /// Launches the first process of every slot.
    mutating func start() -> [DispatcherAction] {
        slots.indices.map { relaunch($0) }
    }

    private mutating func relaunch(_ index: Int) -> DispatcherAction {
        slots[index].instance += 1
        slots[index].phase = .starting
        slots[index].killCause = nil
        slots[index].retiring = nil
        // A daemon deployed by hand keeps its slot's command: after losing the host it
        // may come back with the same token.
        let token = !launchesProcesses && !slots[index].token.isEmpty ? slots[index].token : makeToken()
        slots[index].token = token
        tokens[token] = index
        return .launch(slot: index, instance: slots[index].instance, token: token)
    }

    /// The process for `slot` is running as `pid` (or could not be started).
    mutating func launched(slot index: Int, instance: Int, result: Result<Int32, SpawnError>, descriptors: DescriptorChannel? = nil) -> [DispatcherAction] {
        guard slots[index].instance == instance else { return [] }
        switch result {
        case .success(let pid):
            slots[index].pid = pid
            slots[index].descriptors = descriptors
            return phase == .stopping ? [.signal(pid: pid, signal: SIGKILL)] : []
        case .failure(let error):
            tokens.removeValue(forKey: slots[index].token)
            if phase == .stopping {
                slots[index].phase = .stopped
                return stoppedActions()
            }
            return startFailed(index, String(describing: error))
        }
    }

    /// Registers a continuation resumed once every slot is online, or failed.
    mutating func awaitReadiness(_ continuation: CheckedContinuation<Void, any Error>) -> [DispatcherAction] {
        readinessWaiters.append(continuation)
        return readinessActions()
    }

    private mutating func readinessActions() -> [DispatcherAction] {
        guard !readinessWaiters.isEmpty else { return [] }
        if let failed = slots.first(where: { $0.phase == .failed }) {
            defer { readinessWaiters = [] }
            return [.resumeReadiness(readinessWaiters, .failure(DaemonsError("daemon \(failed.index) cannot start: \(failed.lastFailure ?? "unknown reason")")))]
        }
        if phase == .stopping {
            defer { readinessWaiters = [] }
            return [.resumeReadiness(readinessWaiters, .failure(DaemonsError("the daemons were stopped while starting")))]
        }
        guard slots.allSatisfy({ $0.phase == .online }) else { return [] }
        defer { readinessWaiters = [] }
        return [.resumeReadiness(readinessWaiters, .success(()))]
    }

    /// The daemons did not all come online in time: readiness waiters fail.
    mutating func startupTimedOut(after limit: Duration) -> [DispatcherAction] {
        guard !readinessWaiters.isEmpty else { return [] }
        defer { readinessWaiters = [] }
        let missing = slots.filter { $0.phase != .online }.map { slot in
            "daemon \(slot.index)" + (slot.lastFailure.map { " (\($0))" } ?? "")
        }
        return [.resumeReadiness(readinessWaiters, .failure(DaemonsError("daemons did not connect within \(limit): \(missing.joined(separator: ", "))")))]
    }

    // MARK: Connections

    /// How the host answers an authenticated daemon.
    enum Admission {
        case accepted(slot: Int, instance: Int)
        case refused(String)
    }

    /// A daemon proved it knows the secret and presented `token`. On acceptance `connect`
    /// makes its link (given the slot's descriptor channel), the first action sends
    /// `welcome` (made by `welcome`), and the daemon gets work at once.
    mutating func daemonAuthenticated(
        token: String, pid: Int32, connect: (DescriptorChannel?) -> any DaemonLink, welcome: (Int, Int) -> WireMessage
    ) -> (Admission, [DispatcherAction]) {
        guard phase == .running else { return (.refused("the host is stopping"), []) }
        guard let index = tokens[token], slots[index].phase == .starting, slots[index].token == token else {
            return (.refused("unknown launch token: this daemon was not started by this host, or its slot was already replaced"), [])
        }
        tokens.removeValue(forKey: token)
        let link = connect(slots[index].descriptors)
        slots[index].link = link
        slots[index].phase = .online
        connections += 1
        let instance = slots[index].instance
        var actions: [DispatcherAction] = [.send(link, welcome(index, instance))]
        if templates.isEmpty { slots[index].startFailures = 0 }
        actions += deliverWaitingCalls(index)
        actions += dispatch(index)
        actions += readinessActions()
        return (.accepted(slot: index, instance: instance), actions)
    }

    /// A connection was refused before it became a daemon (wrong secret, bad frames, ...).
    mutating func connectionRejected(_ reason: String) {
        rejected += 1
        lastRejection = reason
    }

    /// The connection of `slot` closed. With a `reason` the host closed it (a protocol
    /// violation) and kills the daemon at once; otherwise the daemon closed it, which
    /// normally means it is exiting: its process exit resolves what it held, and it is
    /// killed if it is still alive after `disconnectGrace`.
    mutating func connectionClosed(slot index: Int, instance: Int, reason: String?) -> [DispatcherAction] {
        guard slots[index].instance == instance, slots[index].link != nil else { return [] }
        slots[index].link = nil
        connections -= 1
        guard launchesProcesses else {
            // A daemon deployed by hand is gone with its connection.
            if slots[index].killCause == nil { slots[index].killCause = .connectionFailed(reason ?? "its connection closed") }
            return slotEnded(index, instance: instance, termination: nil, output: nil)
        }
        guard phase == .running, let pid = slots[index].pid else { return [] }
        guard let reason else {
            return [.schedule(.disconnectGrace(slot: index, instance: instance), after: Self.disconnectGrace)]
        }
        if slots[index].killCause == nil { slots[index].killCause = .connectionFailed(reason) }
        return [.signal(pid: pid, signal: SIGKILL)]
    }

    /// How long a daemon that closed its connection may take to exit.
    static let disconnectGrace = Duration.milliseconds(500)

    // MARK: Jobs

    /// A new job. `id` must be unique.
    mutating func submit(
        id: UInt64, jobType: String, payload: ByteBuffer, attachments: [SharedStorage] = [], resolver: any JobResolver, timeout: Duration?, retries: Int
    ) -> [DispatcherAction] {
        guard phase == .running else {
            return [.resolve(resolver, .failure(JobError(.stopped, "the daemons were stopped before the job was submitted", jobType: jobType)))]
        }
        guard let target = targetSlot() else {
            return [.resolve(resolver, .failure(unavailableError(jobType: jobType)))]
        }
        jobs[id] = Record(id: id, jobType: jobType, payload: payload, attachments: attachments, resolver: resolver, timeout: timeout, retriesLeft: max(0, retries), setupTemplate: nil)
        switch mode {
        case .dispatcher:
            queue.append(id)
            return dispatchToIdle()
        case .roundRobin:
            slots[target].pinned.append(id)
            return dispatch(target)
        }
    }

    /// The slot a new job goes to: any live slot in dispatcher mode, the next one in turn
    /// in round-robin mode; nil when every slot has failed.
    private mutating func targetSlot() -> Int? {
        for _ in slots.indices {
            let index = roundRobinNext % slots.count
            roundRobinNext += 1
            if slots[index].phase != .failed { return index }
        }
        return nil
    }

    /// Adds a setup job run first on every daemon, now and on every daemon that starts
    /// later. `resolvers[i]` receives the result of the run on slot `i` now.
    mutating func everywhere(jobType: String, payload: ByteBuffer, attachments: [SharedStorage] = [], resolvers: [any JobResolver]) -> [DispatcherAction] {
        guard phase == .running else {
            return resolvers.map { .resolve($0, .failure(JobError(.stopped, "the daemons were stopped", jobType: jobType))) }
        }
        templates.append(SetupTemplate(jobType: jobType, payload: payload, attachments: attachments))
        var actions: [DispatcherAction] = []
        for (index, resolver) in zip(slots.indices, resolvers) {
            if slots[index].phase == .failed {
                actions.append(.resolve(resolver, .failure(unavailableError(jobType: jobType))))
                continue
            }
            let id = nextInternal()
            jobs[id] = Record(id: id, jobType: jobType, payload: payload, attachments: attachments, resolver: resolver, timeout: nil, retriesLeft: 0, setupTemplate: templates.count - 1)
            slots[index].pinned.append(id)
            actions += dispatch(index)
        }
        return actions
    }

    mutating func nextInternal() -> UInt64 {
        defer { nextInternalID += 1 }
        return nextInternalID
    }

    /// The daemon in `slot` answered a request (`attachments`: the shared memory that came with it).
    mutating func jobFinished(slot index: Int, instance: Int, result: RunResult, attachments: SharedAttachmentReader? = nil) -> [DispatcherAction] {
        guard slots[index].instance == instance, slots[index].link != nil else { return [] }
        guard let position = slots[index].inFlight.firstIndex(of: result.requestID) else { return [] }
        slots[index].inFlight.remove(at: position)
        slots[index].complete += 1
        // The daemon's next job goes out before this one resolves: resolving runs the
        // submitter's callbacks (decoding the output, starting more work), and the
        // daemon would sit idle through them.
        var actions = dispatch(index)
        if let record = jobs.removeValue(forKey: result.requestID) {
            if record.setupTemplate == nil { slots[index].startFailures = 0 }
            let outcome: JobOutcome = switch result.outcome {
            case .value(let bytes): .value(bytes, attachments)
            case .failure(let report): .failure(JobError(report: report, jobType: record.jobType, daemon: slots[index].identity))
            }
            actions.append(.resolve(record.resolver, outcome))
        }
        actions += dismissIfRetired(index)
        return actions
    }

    /// The daemon of `slot` says it retires (`exitCode`): it gets no more work, and is told
    /// to exit once it has answered what it holds.
    mutating func daemonRetiring(slot index: Int, instance: Int, exitCode: UInt8) -> [DispatcherAction] {
        guard slots[index].instance == instance, slots[index].link != nil else { return [] }
        guard let code = DaemonExitCode(rawValue: Int32(exitCode)), code.isRetirement else {
            return slots[index].link.map { [.close($0)] } ?? []
        }
        slots[index].retiring = code
        // Jobs waiting for this slot only (round-robin) wait for the next daemon in it.
        return dismissIfRetired(index)
    }

    /// Replaces the daemon of `slot` by a fresh one, as if it retired: it gets no more
    /// work, finishes what it holds, and exits; a new daemon takes the slot. Its actors
    /// are lost with it. Returns the instance the slot has now.
    mutating func restart(slot index: Int) -> (instance: Int, actions: [DispatcherAction]) {
        guard phase == .running, slots.indices.contains(index), slots[index].phase == .online, slots[index].retiring == nil else {
            return (slots.indices.contains(index) ? slots[index].instance : 0, [])
        }
        slots[index].retiring = .wallTime
        return (slots[index].instance, dismissIfRetired(index))
    }

    /// Sends `shutdown` to a retiring daemon that holds nothing any more.
    private func dismissIfRetired(_ index: Int) -> [DispatcherAction] {
        guard slots[index].retiring != nil, slots[index].inFlight.isEmpty, slots[index].directCalls.isEmpty,
              let link = slots[index].link else { return [] }
        return [.send(link, .shutdown)]
    }

    /// Cancels a job on behalf of its handle.
    mutating func cancel(job id: UInt64) -> [DispatcherAction] {
        guard let record = jobs[id] else { return [] }
        return stop(record, JobError(.cancelled, "the job was cancelled", jobType: record.jobType, daemon: record.slot.map { slots[$0].identity }))
    }

    /// A scheduled event is due.
    mutating func timerFired(_ event: TimerEvent) -> [DispatcherAction] {
        switch event {
        case .timeout(let id):
            guard let record = jobs[id], let timeout = record.timeout else { return [] }
            return stop(record, JobError(.timedOut, "the job did not finish within \(timeout)", jobType: record.jobType, daemon: record.slot.map { slots[$0].identity }))
        case .cancelGrace(let index, let instance, let id):
            // A daemon still holding a cancelled job is killed.
            guard slots[index].instance == instance, slots[index].inFlight.contains(id) else { return [] }
            if slots[index].killCause == nil { slots[index].killCause = .unresponsive }
            if let pid = slots[index].pid { return [.signal(pid: pid, signal: SIGKILL)] }
            // A daemon deployed by hand is stopped by closing its connection: it exits.
            return slots[index].link.map { [.close($0)] } ?? []
        case .stopGrace(let index, let instance):
            guard slots[index].instance == instance, let pid = slots[index].pid else { return [] }
            return [.signal(pid: pid, signal: SIGKILL)]
        case .callTimeout(let id):
            guard let call = calls[id] else { return [] }
            return stopCall(id, JobError(.timedOut, "the call did not finish within \(call.timeout.map { "\($0)" } ?? "its time limit")", jobType: call.display))
        case .disconnectGrace(let index, let instance):
            guard slots[index].instance == instance, slots[index].link == nil, let pid = slots[index].pid else { return [] }
            if slots[index].killCause == nil { slots[index].killCause = .connectionFailed("the daemon closed its connection and did not exit") }
            return [.signal(pid: pid, signal: SIGKILL)]
        }
    }

    /// Resolves `record` with `error` and stops its work: a waiting job is dropped; a
    /// running one is cancelled in its daemon, which is killed if it does not answer
    /// within the grace period.
    private mutating func stop(_ record: Record, _ error: JobError) -> [DispatcherAction] {
        jobs.removeValue(forKey: record.id)
        var actions: [DispatcherAction] = [.resolve(record.resolver, .failure(error))]
        guard let index = record.slot else {
            if let position = queue.firstIndex(of: record.id) { queue.remove(at: position) }
            for slot in slots.indices {
                if let position = slots[slot].pinned.firstIndex(of: record.id) { slots[slot].pinned.remove(at: position) }
            }
            return actions
        }
        if let link = slots[index].link {
            actions.append(.send(link, .cancel(requestID: record.id)))
        }
        actions.append(.schedule(.cancelGrace(slot: index, instance: slots[index].instance, job: record.id), after: cancellationGrace))
        return actions
    }

    mutating func dispatchToIdle() -> [DispatcherAction] {
        var actions = unparkForWaitingJobs()
        for index in slots.indices where !queue.isEmpty && slots[index].phase == .online && slots[index].inFlight.isEmpty {
            actions += dispatch(index)
        }
        return actions
    }

    /// Starts daemons again in parked slots while jobs wait for them: one per queued job,
    /// and any slot with jobs pinned to it.
    private mutating func unparkForWaitingJobs() -> [DispatcherAction] {
        guard phase == .running else { return [] }
        var wanted = queue.count - slots.filter { $0.phase == .starting || ($0.phase == .online && $0.inFlight.isEmpty) }.count
        var actions: [DispatcherAction] = []
        for index in slots.indices where slots[index].phase == .parked {
            guard wanted > 0 || !slots[index].pinned.isEmpty else { continue }
            wanted -= 1
            actions.append(relaunch(index))
        }
        return actions
    }

    /// Sends `slot` what it may run now: in dispatcher mode one job (its pinned jobs
    /// first, then the queue) when it is idle; in round-robin mode everything pinned.
    private mutating func dispatch(_ index: Int) -> [DispatcherAction] {
        guard slots[index].phase == .online, slots[index].retiring == nil, let link = slots[index].link else { return [] }
        var actions: [DispatcherAction] = []
        while mode == .roundRobin || slots[index].inFlight.isEmpty {
            guard let id = slots[index].pinned.popFirst() ?? (mode == .dispatcher ? queue.popFirst() : nil) else { break }
            guard var record = jobs[id] else { continue }
            record.slot = index
            jobs[id] = record
            slots[index].inFlight.append(id)
            slots[index].assigned += 1
            if let call = record.call {
                actions.append(.send(link, .call(CallRequest(callID: id, kind: .invoke, actor: call.actor.wire, name: call.target, payload: record.payload)), attachments: record.attachments))
            } else {
                actions.append(.send(link, .run(RunRequest(requestID: id, jobType: record.jobType, payload: record.payload)), attachments: record.attachments))
            }
            if let timeout = record.timeout { actions.append(.schedule(.timeout(job: id), after: timeout)) }
        }
        return actions
    }

    // MARK: Process exits

    /// The process of `slot` has ended and been reaped.
    mutating func processExited(slot index: Int, instance: Int, termination: ProcessTermination, output: String?) -> [DispatcherAction] {
        guard slots[index].instance == instance else { return [] }
        return slotEnded(index, instance: instance, termination: termination, output: output)
    }

    /// The daemon of `slot` is gone: its process ended (`termination`), or, for a daemon
    /// deployed by hand, its connection did (nil). What it held resolves or waits again,
    /// and the slot starts over.
    private mutating func slotEnded(_ index: Int, instance: Int, termination: ProcessTermination?, output: String?) -> [DispatcherAction] {
        var actions: [DispatcherAction] = []
        if let link = slots[index].link {
            actions.append(.close(link))
            slots[index].link = nil
            connections -= 1
        }
        slots[index].pid = nil
        slots[index].descriptors = nil
        tokens.removeValue(forKey: slots[index].token)
        if phase == .stopping {
            slots[index].phase = .stopped
            return actions + stoppedActions()
        }
        let identity = DaemonIdentity(index: index, instance: instance, pid: nil)
        let neverOnline = slots[index].phase == .starting
        actions += actorsLost(index, instance: instance, termination: termination, output: output)
        // A daemon that exits because its connection broke (a cut link noticed on its
        // side first) lost the connection: it did not crash.
        let lostHost = termination == .exited(code: DaemonExitCode.hostLost.rawValue)
        let cause = slots[index].killCause ?? (lostHost ? .connectionFailed("the daemon lost its connection to the host and exited") : nil)
        let retirement = slots[index].retiring
            ?? termination.flatMap { termination -> DaemonExitCode? in
                guard case .exited(let code) = termination, let known = DaemonExitCode(rawValue: code), known.isRetirement else { return nil }
                return known
            }
        let inFlight = slots[index].inFlight
        slots[index].inFlight = []

        // The daemon runs what it was sent in order: the first job still held was
        // running, the rest never started and simply go back to wait.
        var waitAgain: [UInt64] = []
        for (position, id) in inFlight.enumerated() {
            guard var record = jobs[id] else { continue }
            record.slot = nil
            jobs[id] = record
            if position > 0 {
                waitAgain.append(id)
                continue
            }
            if record.setupTemplate != nil { slots[index].startFailures += 1 }
            if record.retriesLeft > 0 {
                record.retriesLeft -= 1
                jobs[id] = record
                waitAgain.append(id)
                continue
            }
            jobs.removeValue(forKey: id)
            let error: JobError = switch cause {
            case .connectionFailed(let reason):
                JobError(.connectionLost, "the connection to the daemon failed: \(reason)", jobType: record.jobType, daemon: identity, termination: termination)
            case .unresponsive, nil:
                JobError(.crashed, "the daemon died with \(Self.explain(termination)) while running the job", jobType: record.jobType, daemon: identity, termination: termination, daemonOutput: output)
            }
            actions.append(.resolve(record.resolver, .failure(error)))
        }
        if neverOnline {
            slots[index].startFailures += 1
            slots[index].lastFailure = "it exited with \(Self.explain(termination)) before connecting" + (output.map { "; its output:\n\($0)" } ?? "")
        } else if cause == nil, retirement == nil {
            slots[index].crashed += 1
            slots[index].lastFailure = "it died with \(Self.explain(termination))" + (output.map { "; its output:\n\($0)" } ?? "")
        }
        // Setup jobs return to the slot (rebuildSetup orders them); other jobs wait at
        // the front of the queue they came from.
        for id in waitAgain.reversed() {
            if mode == .dispatcher, jobs[id]?.setupTemplate == nil {
                queue.prepend(id)
            } else {
                slots[index].pinned.prepend(id)
            }
        }

        if slots[index].startFailures >= maxStartFailures {
            actions += failSlot(index)
        } else if retirement == .idle, waitAgain.isEmpty, slots[index].pinned.isEmpty {
            // Retired for want of work: started again when jobs wait.
            slots[index].phase = .parked
            rebuildSetup(index)
        } else {
            rebuildSetup(index)
            actions.append(relaunch(index))
        }
        actions += dispatchToIdle()
        actions += readinessActions()
        return actions
    }

    /// A termination, with the meaning of a daemon's own exit codes (nil: a daemon known
    /// only by its connection, which was lost).
    static func explain(_ termination: ProcessTermination?) -> String {
        guard let termination else { return "the loss of its connection" }
        if case .exited(let code) = termination, code != 0, let known = DaemonExitCode(rawValue: code) {
            return "\(termination) (\(known))"
        }
        return "\(termination)"
    }

    /// A slot could not start a process.
    private mutating func startFailed(_ index: Int, _ reason: String) -> [DispatcherAction] {
        slots[index].startFailures += 1
        slots[index].lastFailure = reason
        var actions: [DispatcherAction]
        if slots[index].startFailures >= maxStartFailures {
            actions = failSlot(index)
        } else {
            actions = [relaunch(index)]
        }
        actions += readinessActions()
        return actions
    }

    /// Puts the setup jobs of every template first in a new instance's pinned queue,
    /// keeping the records of setup runs someone awaits.
    private mutating func rebuildSetup(_ index: Int) {
        let pinned = slots[index].pinned
        var rebuilt: Deque<UInt64> = []
        for (templateIndex, template) in templates.enumerated() {
            if let existing = pinned.first(where: { jobs[$0]?.setupTemplate == templateIndex }) {
                rebuilt.append(existing)
            } else {
                let id = nextInternal()
                jobs[id] = Record(id: id, jobType: template.jobType, payload: template.payload, attachments: template.attachments, resolver: SetupRunRecorder(), timeout: nil, retriesLeft: 0, setupTemplate: templateIndex)
                rebuilt.append(id)
            }
        }
        rebuilt.append(contentsOf: pinned.filter { jobs[$0]?.setupTemplate == nil })
        slots[index].pinned = rebuilt
    }

    /// Gives up on a slot that keeps failing to start; when no slot is left, every waiting job fails.
    private mutating func failSlot(_ index: Int) -> [DispatcherAction] {
        slots[index].phase = .failed
        var lost = actorsOnFailedSlot(index)
        var failed = Array(slots[index].pinned)
        slots[index].pinned = []
        if slots.allSatisfy({ $0.phase == .failed }) {
            failed += queue
            queue = []
        }
        lost += failed.compactMap { id in
            guard let record = jobs.removeValue(forKey: id) else { return nil }
            return .resolve(record.resolver, .failure(unavailableError(jobType: record.jobType)))
        }
        return lost
    }

    func unavailableError(jobType: String) -> JobError {
        let reasons = slots.compactMap { slot in slot.lastFailure.map { "daemon \(slot.index): \($0)" } }
        return JobError(.daemonsUnavailable, "no daemon can run the job: they failed to start. " + reasons.joined(separator: "; "), jobType: jobType)
    }

    // MARK: Stopping

    /// Stops everything: unresolved jobs resolve as stopped, daemons are told to exit.
    /// A daemon still running a job has its job cancelled and is killed if it has not
    /// exited after the cancellation grace, as a cancelled job's daemon would be.
    mutating func stop() -> [DispatcherAction] {
        guard phase == .running else { return [] }
        phase = .stopping
        var actions: [DispatcherAction] = jobs.values.sorted { $0.id < $1.id }.map { record in
            .resolve(record.resolver, .failure(JobError(.stopped, "the daemons were stopped before the job finished", jobType: record.jobType, daemon: record.slot.map { slots[$0].identity })))
        }
        jobs = [:]
        queue = []
        actions += failAllCalls(JobError(.stopped, "the daemons were stopped before the call finished", jobType: ""))
        for index in slots.indices {
            let inFlight = slots[index].inFlight
            slots[index].pinned = []
            slots[index].inFlight = []
            if let link = slots[index].link {
                for id in inFlight { actions.append(.send(link, .cancel(requestID: id))) }
                actions.append(.send(link, .shutdown))
                if !inFlight.isEmpty {
                    actions.append(.schedule(.stopGrace(slot: index, instance: slots[index].instance), after: cancellationGrace))
                }
            }
            if let pid = slots[index].pid {
                // A daemon that has not connected yet cannot be told to shut down.
                if slots[index].link == nil { actions.append(.signal(pid: pid, signal: SIGKILL)) }
            } else if slots[index].phase != .starting || !launchesProcesses {
                slots[index].phase = .stopped
            }
        }
        actions += readinessActions()
        return actions
    }

    /// Kills every daemon process still running (after the graceful stop took too long).
    func killRemaining() -> [DispatcherAction] {
        slots.compactMap { slot in slot.pid.map { .signal(pid: $0, signal: SIGKILL) } }
    }

    /// Registers a continuation resumed once every daemon process is gone.
    mutating func awaitStopped(_ continuation: CheckedContinuation<Void, Never>) -> [DispatcherAction] {
        stopWaiters.append(continuation)
        return stoppedActions()
    }

    private mutating func stoppedActions() -> [DispatcherAction] {
        guard phase == .stopping, !stopWaiters.isEmpty,
              slots.allSatisfy({ $0.phase == .stopped || $0.phase == .failed }) else { return [] }
        defer { stopWaiters = [] }
        return [.resumeStopped(stopWaiters)]
    }

    // MARK: Status

    /// The slots waiting for a daemon to join, with the token it must present.
    var waitingTokens: [(slot: Int, token: String)] {
        slots.filter { $0.phase == .starting && $0.link == nil }.map { ($0.index, $0.token) }
    }

    /// A snapshot for `Daemons.status()`.
    func status(url: String) -> DaemonsStatus {
        DaemonsStatus(
            url: url,
            connections: connections,
            waiting: queue.count + slots.reduce(0) { $0 + $1.pinned.count },
            daemons: slots.map { slot in
                DaemonStatus(index: slot.index, online: slot.phase == .online, instance: slot.instance, pid: slot.pid,
                             assigned: slot.assigned, complete: slot.complete, crashed: slot.crashed, actors: slot.actorCount,
                             address: slot.link?.peerAddress)
            },
            rejectedConnections: rejected,
            lastRejection: lastRejection
        )
    }
}

/// Receives the results of setup jobs on daemons that started after `everywhere`:
/// nobody awaits them, so failures are counted, not thrown.
final class SetupRunRecorder: JobResolver {
    func resolve(_ outcome: JobOutcome) -> Bool { true }
}
