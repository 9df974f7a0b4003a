import KapselSharedMemory
import KapselWire

#if canImport(Glibc)
import Glibc
#endif

/// The dispatcher's state machine: which jobs wait, which daemon runs what, and what
/// happens when daemons answer, time out, crash or connect.
///
/// It performs no I/O. Each event returns the `DispatcherAction`s to carry out, so the
/// rules stay in one place and the shell (`Dispatcher`) is thin. Its state is three
/// tables: the daemon slots (`SlotTable`), the unresolved jobs (`JobQueue`) and the
/// actors with their calls (`ActorRoutes`); the events are spread over this file
/// (start-up and connections), `+Jobs`, `+Exits` and `+Actors`.
///
/// The invariant that makes every job resolve exactly once: a job is in `jobs` until
/// the moment an action resolves it, and only code that removes it from `jobs` emits
/// that action (likewise calls in `actors.calls`).
struct DispatcherState {
    /// How jobs are handed to daemons.
    enum Mode: Sendable {
        /// FIFO queue; a job goes to the first idle daemon, one at a time.
        case dispatcher
        /// Each job goes at once to the next daemon in turn and waits there.
        case roundRobin
    }

    enum Phase { case running, stopping }

    let mode: Mode
    let cancellationGrace: Duration
    let maxStartFailures: Int
    /// How the pool sizes itself.
    let scaling: ScalingPolicy
    /// How the pool's workers are launched, for errors ("local", "Slurm (partition debug)").
    let launcherDescription: String
    /// Whether each slot is a process the host launched and watches; false for daemons
    /// deployed by hand, which exist for the host only as their connections.
    let launchesProcesses: Bool
    /// Whether jobs leaving the queue are told to the observer (`PoolEvent.started`),
    /// which then measures queue waits.
    let reportsStarts: Bool
    private(set) var phase = Phase.running
    var slots: SlotTable
    var jobs = JobQueue()
    var actors: ActorRoutes
    private var rejected = 0
    private var lastRejection: String?
    private var readinessWaiters: [CheckedContinuation<Void, any Error>] = []
    private var stopWaiters: [CheckedContinuation<Void, Never>] = []
    /// Whether the pool takes jobs: false once a graceful shutdown began (`+Draining`).
    var accepting = true
    var drainWaiters: [CheckedContinuation<Void, Never>] = []
    private let makeToken: @Sendable () -> String

    /// How long a daemon that closed its connection may take to exit.
    static let disconnectGrace = Duration.milliseconds(500)

    /// A pool of `slotCount` slots sized by `scaling` (by default exactly `slotCount` workers).
    init(
        slotCount: Int, mode: Mode, cancellationGrace: Duration, maxStartFailures: Int, launchesProcesses: Bool = true,
        scaling: ScalingPolicy? = nil, launcherDescription: String = "local", reportsStarts: Bool = false, makeToken: @escaping @Sendable () -> String
    ) {
        precondition(scaling.map { $0.workers.upperBound == slotCount } ?? true, "a slot for each worker the pool may have")
        self.launchesProcesses = launchesProcesses
        self.reportsStarts = reportsStarts
        self.mode = mode
        self.cancellationGrace = cancellationGrace
        self.maxStartFailures = maxStartFailures
        self.scaling = scaling ?? .fixed(slotCount)
        self.launcherDescription = launcherDescription
        self.makeToken = makeToken
        self.slots = SlotTable(count: slotCount)
        self.actors = ActorRoutes(slotCount: slotCount)
    }

    // MARK: Starting

    /// Launches the pool's minimum of workers; the other slots wait, parked, for work.
    mutating func start() -> [DispatcherAction] {
        var actions: [DispatcherAction] = []
        for index in slots.indices {
            if index < scaling.workers.lowerBound {
                actions += relaunch(index)
            } else {
                slots[index].state = .parked
            }
        }
        return actions
    }

    /// Starts the next instance of `index`, with its launch's deadline.
    mutating func relaunch(_ index: Int) -> [DispatcherAction] {
        // A daemon deployed by hand keeps its slot's command: after losing the host it
        // may come back with the same token.
        let keepsToken = !launchesProcesses && !slots[index].token.isEmpty
        slots.relaunch(index, token: keepsToken ? slots[index].token : makeToken())
        let instance = slots[index].instance
        var actions: [DispatcherAction] = [.launch(slot: index, instance: instance, token: slots[index].token)]
        if launchesProcesses, let limit = scaling.launchTimeout {
            actions.append(.schedule(.launchDeadline(slot: index, instance: instance), after: limit))
        }
        return actions
    }

    /// The process for `slot` is running as `pid` (or could not be started).
    mutating func launched(slot index: Int, instance: Int, result: Result<Int32, SpawnError>, descriptors: DescriptorChannel? = nil) -> [DispatcherAction] {
        guard slots[index].instance == instance else { return [] }
        switch result {
        case .success(let pid):
            slots.launched(index, SlotTable.LaunchedProcess(pid: pid, descriptors: descriptors))
            // A launch stopped before it reported its process is stopped now.
            if phase == .stopping || slots[index].launchTimedOut { return [.signal(pid: pid, signal: SIGKILL)] }
            return [.observe(.launched(slot: index, instance: instance, pid: pid))]
        case .failure(let error):
            return launchFailed(slot: index, instance: instance, reason: String(describing: error))
        }
    }

    /// The daemon of `slot` could not be started, for `reason`.
    mutating func launchFailed(slot index: Int, instance: Int, reason: String) -> [DispatcherAction] {
        guard slots[index].instance == instance else { return [] }
        slots.revokeToken(of: index)
        if phase == .stopping {
            slots[index].state = .stopped
            return stoppedActions()
        }
        return startFailed(index, reason)
    }

    /// Registers a continuation resumed once every slot is online, or failed.
    mutating func awaitReadiness(_ continuation: CheckedContinuation<Void, any Error>) -> [DispatcherAction] {
        readinessWaiters.append(continuation)
        return readinessActions()
    }

    mutating func readinessActions() -> [DispatcherAction] {
        guard !readinessWaiters.isEmpty else { return [] }
        let result: Result<Void, DaemonsError>
        if let failed = slots.all.first(where: \.hasFailed) {
            result = .failure(DaemonsError("daemon \(failed.index) cannot start: \(failed.lastFailure ?? "unknown reason")"))
        } else if phase == .stopping {
            result = .failure(DaemonsError("the daemons were stopped while starting"))
        } else if slots.allSatisfy({ $0.isOnline || $0.isParked }) {
            result = .success(())
        } else {
            return []
        }
        defer { readinessWaiters = [] }
        return [.resumeReadiness(readinessWaiters, result)]
    }

    /// The daemons did not all come online in time: readiness waiters fail.
    mutating func startupTimedOut(after limit: Duration) -> [DispatcherAction] {
        guard !readinessWaiters.isEmpty else { return [] }
        defer { readinessWaiters = [] }
        let missing = slots.all.filter { !$0.isOnline }.map { slot in
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
        token: String, pid: Int32, batchJob: String? = nil, connect: (DescriptorChannel?) -> any DaemonLink, welcome: (Int, Int) -> WireMessage
    ) -> (Admission, [DispatcherAction]) {
        guard phase == .running else { return (.refused("the host is stopping"), []) }
        guard let index = slots.claim(token: token) else {
            return (.refused("unknown launch token: this daemon was not started by this host, or its slot was already replaced"), [])
        }
        let link = connect(slots[index].process?.descriptors)
        slots.connect(index, link: link, batchJob: batchJob)
        let instance = slots[index].instance
        var actions: [DispatcherAction] = [.send(link, .plain(welcome(index, instance))), .observe(.online(slots[index].identity, address: link.peerAddress))]
        if jobs.templates.isEmpty { slots[index].startFailures = 0 }
        // The launcher works: in a pool that scales, slots it failed for may try again.
        if scaling.isElastic { slots.parkFailed() }
        actions += deliverWaitingCalls(index)
        actions += dispatch(index)
        actions += idleCheck(index)
        actions += readinessActions()
        return (.accepted(slot: index, instance: instance), actions)
    }

    /// A connection (from `address`, where known) was refused before it became a daemon
    /// (wrong secret, bad frames, ...).
    mutating func connectionRejected(_ reason: String, address: String?) -> [DispatcherAction] {
        rejected += 1
        lastRejection = reason
        return [.observe(.refused(address: address, reason: reason))]
    }

    /// The connection of `slot` closed. With a `reason` the host closed it (a protocol
    /// violation) and kills the daemon at once; otherwise the daemon closed it, which
    /// normally means it is exiting: its process exit resolves what it held, and it is
    /// killed if it is still alive after `disconnectGrace`.
    mutating func connectionClosed(slot index: Int, instance: Int, reason: String?) -> [DispatcherAction] {
        guard slots[index].instance == instance, slots[index].isOnline else { return [] }
        // Its process ended already: all it wrote is read (the close may be a reset, for
        // jobs it never read; the death is what is reported).
        if slots[index].departure.exit != nil { return exitDrained(slot: index, instance: instance) }
        guard launchesProcesses else {
            // A daemon deployed by hand is gone with its connection.
            slots[index].noteKill(.connectionFailed(reason ?? "its connection closed"))
            return slotEnded(index, instance: instance, termination: nil, output: nil)
        }
        if let reason { slots[index].noteKill(.connectionFailed(reason)) }
        slots.disconnect(index)
        guard phase == .running, let pid = slots[index].process?.pid else { return [] }
        guard reason != nil else {
            return [.schedule(.disconnectGrace(slot: index, instance: instance), after: Self.disconnectGrace)]
        }
        return [.signal(pid: pid, signal: SIGKILL)]
    }

    // MARK: Status

    /// A snapshot for `Daemons.status()`.
    func status(url: String) -> DaemonsStatus {
        DaemonsStatus(
            url: url,
            connections: slots.connections,
            waiting: jobs.waiting.count + slots.all.reduce(0) { count, slot in count + slot.pinned.count { jobs[$0]?.setupTemplate == nil } },
            daemons: slots.all.map { slot in
                DaemonStatus(index: slot.index, phase: slot.phase, running: slot.inFlight.count, instance: slot.instance, pid: slot.process?.pid,
                             assigned: slot.assigned, complete: slot.complete, crashed: slot.crashed,
                             actors: actors.perSlot[slot.index].actorCount, address: slot.link?.peerAddress, batchJob: slot.batchJob)
            },
            rejectedConnections: rejected,
            lastRejection: lastRejection
        )
    }

    // MARK: Stopping

    /// Stops everything: unresolved jobs resolve as stopped, daemons are told to exit.
    /// A daemon still running a job has its job cancelled and is killed if it has not
    /// exited after the cancellation grace, as a cancelled job's daemon would be.
    mutating func stop() -> [DispatcherAction] {
        guard phase == .running else { return [] }
        phase = .stopping
        var actions: [DispatcherAction] = []
        for record in jobs.removeAll() {
            if let deadline = record.deadline { actions.append(.cancelTimer(deadline)) }
            let error = JobError(.stopped, "the daemons were stopped before the job finished", jobType: record.jobType, daemon: record.slot.map { slots[$0].identity })
            actions.append(.resolve(record.resolver, .failure(error)))
        }
        actions += drainedActions()
        actions += failAllCalls(JobError(.stopped, "the daemons were stopped before the call finished", jobType: ""))
        for index in slots.indices {
            let inFlight = slots[index].inFlight
            slots[index].pinned = []
            slots[index].inFlight = []
            if let link = slots[index].link {
                for id in inFlight { actions.append(.send(link, .plain(.cancel(requestID: id)))) }
                actions.append(.send(link, .plain(.shutdown)))
                if !inFlight.isEmpty && launchesProcesses {
                    actions.append(.schedule(.stopGrace(slot: index, instance: slots[index].instance), after: cancellationGrace))
                }
            }
            if let pid = slots[index].process?.pid {
                // A daemon that has not connected yet cannot be told to shut down.
                if slots[index].link == nil { actions.append(.signal(pid: pid, signal: SIGKILL)) }
            } else if !launchesProcesses || !slots[index].isStarting {
                // Nothing to wait for: no process, or one a launch has not reported yet
                // (`launched` kills it). A daemon deployed by hand leaves on `shutdown`.
                slots.disconnect(index)
                slots[index].state = .stopped
            }
        }
        actions += readinessActions()
        return actions
    }

    /// Kills every daemon process still running (after the graceful stop took too long).
    func killRemaining() -> [DispatcherAction] {
        slots.all.compactMap { slot in slot.process.map { .signal(pid: $0.pid, signal: SIGKILL) } }
    }

    /// Registers a continuation resumed once every daemon process is gone.
    mutating func awaitStopped(_ continuation: CheckedContinuation<Void, Never>) -> [DispatcherAction] {
        stopWaiters.append(continuation)
        return stoppedActions()
    }

    mutating func stoppedActions() -> [DispatcherAction] {
        guard phase == .stopping, !stopWaiters.isEmpty, slots.allSatisfy({ $0.isStopped || $0.hasFailed }) else { return [] }
        defer { stopWaiters = [] }
        return [.resumeStopped(stopWaiters)]
    }
}

/// Receives the results of setup jobs on daemons that started after `everywhere`, and
/// of actors created again: nobody awaits them, so failures are counted, not thrown.
final class SetupRunRecorder: JobResolver {
    func resolve(_ outcome: JobOutcome) -> Bool { true }
}
