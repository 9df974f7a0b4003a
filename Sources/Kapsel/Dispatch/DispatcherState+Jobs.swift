import KapselWire

#if canImport(Glibc)
import Glibc
#endif

/// Jobs in the dispatcher's state machine: submitting, handing out, answers, time limits,
/// cancellation and daemons that retire.
extension DispatcherState {
    // MARK: Submitting

    /// A new job. `id` must be unique. `retries`: how many times it runs again if its
    /// daemon dies under it (nil: the pool's crash limit).
    mutating func submit(id: UInt64, jobType: String, envelope: Envelope, resolver: any JobResolver, timeout: Duration?, retries: Int?) -> [DispatcherAction] {
        guard phase == .running else {
            return [.resolve(resolver, .failure(JobError(.stopped, "the daemons were stopped before the job was submitted", jobType: jobType)))]
        }
        guard accepting else { return [.resolve(resolver, .failure(Self.shuttingDownError(jobType: jobType)))] }
        guard let target = slots.nextTarget() else {
            return [.resolve(resolver, .failure(unavailableError(jobType: jobType)))]
        }
        jobs.add(JobQueue.Record(id: id, jobType: jobType, envelope: envelope, resolver: resolver, timeout: timeout, retriesLeft: scaling.retries(asked: retries), setupTemplate: nil, call: nil))
        switch mode {
        case .dispatcher:
            jobs.enqueue(id)
            return dispatchToIdle()
        case .roundRobin:
            slots[target].pinned.append(id)
            return dispatch(target)
        }
    }

    /// Adds a setup job run first on every daemon, now and on every daemon that starts
    /// later. `resolver(i)` is asked for the receiver of the run on slot `i` for each slot
    /// with a daemon now (or that failed); a parked slot runs the job when it starts.
    mutating func everywhere(jobType: String, envelope: Envelope, resolver: (Int) -> any JobResolver) -> [DispatcherAction] {
        guard phase == .running else {
            return slots.indices.filter { !slots[$0].isParked }.map { .resolve(resolver($0), .failure(JobError(.stopped, "the daemons were stopped", jobType: jobType))) }
        }
        guard accepting else {
            return slots.indices.filter { !slots[$0].isParked }.map { .resolve(resolver($0), .failure(Self.shuttingDownError(jobType: jobType))) }
        }
        let template = jobs.addTemplate(JobQueue.SetupTemplate(jobType: jobType, envelope: envelope))
        var actions: [DispatcherAction] = []
        for index in slots.indices {
            if slots[index].hasFailed {
                actions.append(.resolve(resolver(index), .failure(unavailableError(jobType: jobType))))
                continue
            }
            let parked = slots[index].isParked
            let id = jobs.makeInternalID()
            jobs.add(JobQueue.Record(id: id, jobType: jobType, envelope: envelope, resolver: parked ? SetupRunRecorder() : resolver(index), timeout: nil,
                                     retriesLeft: 0, setupTemplate: template, call: nil))
            slots[index].pinned.append(id)
            if !parked { actions += dispatch(index) }
        }
        return actions
    }

    /// The error of a job submitted once a graceful shutdown began.
    static func shuttingDownError(jobType: String) -> JobError {
        JobError(.shuttingDown, "the pool is shutting down: it takes no more jobs", jobType: jobType)
    }

    // MARK: Handing out

    /// Gives waiting jobs to idle daemons first, then one by one to the daemon holding the
    /// fewest whose short jobs allow more ahead of the one it runs (`SlotPace`); starts
    /// parked slots for them.
    mutating func dispatchToIdle() -> [DispatcherAction] {
        var actions = unparkForWaitingJobs()
        for index in slots.indices where !jobs.waiting.isEmpty && slots[index].isOnline && slots[index].inFlight.isEmpty {
            actions += dispatch(index, upTo: 1)
        }
        while !jobs.waiting.isEmpty, let index = leastLoadedSlotWithRoom() {
            let before = slots[index].inFlight.count
            actions += dispatch(index, upTo: before + 1)
            // The next job may not go ahead of a running one (a time limit, an actor
            // call): it waits for an idle daemon, and the jobs behind it with it.
            if slots[index].inFlight.count == before { break }
        }
        return actions
    }

    /// Starts daemons again in parked slots while work waits for them: as many as the
    /// scaling policy asks for the queue, and any slot with work of its own waiting (jobs
    /// pinned to it, or actor calls; its setup jobs alone do not count: they run whenever
    /// it starts).
    private mutating func unparkForWaitingJobs() -> [DispatcherAction] {
        guard phase == .running else { return [] }
        var parked = 0
        var ready = 0
        for index in slots.indices {
            if slots[index].isParked { parked += 1 }
            if slots[index].isStarting || slots[index].isIdle { ready += 1 }
        }
        guard parked > 0 else { return [] }
        var wanted = scaling.launches(waiting: jobs.waiting.count, ready: ready, parked: parked)
        var actions: [DispatcherAction] = []
        for index in slots.indices where slots[index].isParked {
            let ownWork = slots[index].pinned.contains { jobs[$0]?.setupTemplate == nil } || !actors.perSlot[index].waiting.isEmpty
            guard wanted > 0 || ownWork else { continue }
            if !ownWork { wanted -= 1 }
            actions += relaunch(index)
        }
        return actions
    }

    /// Sends `slot` what it may run now: in dispatcher mode its pinned jobs first, then
    /// the queue's, one when it is idle and more behind it while its pace allows (and
    /// `limit`, if given) — a job sent ahead has no time limit and is no actor call, whose
    /// time would start before the daemon reaches it; in round-robin mode everything
    /// pinned. Each send starts an attempt, with its own deadline.
    mutating func dispatch(_ index: Int, upTo limit: Int = .max) -> [DispatcherAction] {
        guard slots[index].acceptsWork, let link = slots[index].link else { return [] }
        var actions: [DispatcherAction] = []
        while mode == .roundRobin || slots[index].inFlight.count < min(limit, slots[index].pace.depth) {
            guard let id = slots[index].pinned.popFirst() ?? (mode == .dispatcher ? nextWaiting(ahead: !slots[index].inFlight.isEmpty) : nil) else { break }
            guard let record = jobs.send(id, to: index) else { continue }
            slots[index].inFlight.append(id)
            slots[index].assigned += 1
            if reportsStarts, record.attempts == 1 { actions.append(.observe(.started(record.resolver))) }
            if let call = record.call {
                actions.append(.send(link, .call(callID: id, kind: .invoke, actor: call.actor.wire, name: call.target, record.envelope)))
            } else if slots[index].inFlight.count > 1 {
                // Behind a job the daemon has: written with the link's next write.
                actions.append(.queue(link, .run(requestID: id, jobType: record.jobType, record.envelope)))
            } else {
                actions.append(.send(link, .run(requestID: id, jobType: record.jobType, record.envelope)))
            }
            if let deadline = record.deadline, let timeout = record.timeout { actions.append(.schedule(deadline, after: timeout)) }
        }
        return actions
    }

    /// The online slot holding the fewest jobs among those whose pace allows one more
    /// (the first of them on a tie); nil when none does. No array is built: this runs on
    /// every submission.
    private func leastLoadedSlotWithRoom() -> Int? {
        var least: Int?
        for index in slots.indices where slots[index].acceptsWork && slots[index].inFlight.count < slots[index].pace.depth {
            if least.map({ slots[index].inFlight.count < slots[$0].inFlight.count }) ?? true { least = index }
        }
        return least
    }

    /// The queue's next job, when it may go to a daemon busy with others (`ahead`) or to an idle one.
    private mutating func nextWaiting(ahead: Bool) -> UInt64? {
        if ahead, let first = jobs.waiting.first, let record = jobs[first], record.timeout != nil || record.call != nil { return nil }
        return jobs.takeNextWaiting()
    }

    // MARK: Answers

    /// The daemon in `slot` answered request `requestID` at `now`.
    mutating func jobFinished(slot index: Int, instance: Int, requestID: UInt64, completion: Completion, at now: ContinuousClock.Instant) -> [DispatcherAction] {
        guard slots[index].instance == instance, slots[index].isOnline else { return [] }
        guard let position = slots[index].inFlight.firstIndex(of: requestID) else { return [] }
        slots[index].inFlight.remove(at: position)
        slots[index].complete += 1
        if position == 0 { slots[index].pace.headFinished(at: now) }
        // The daemon's next job goes out before this one resolves: resolving runs the
        // submitter's callbacks (decoding the output, starting more work), and the
        // daemon would sit idle through them.
        var actions = dispatch(index)
        if position == 0, !slots[index].inFlight.isEmpty { slots[index].pace.headStarted(at: now) }
        if let record = jobs.remove(requestID) {
            if record.setupTemplate == nil { slots[index].startFailures = 0 }
            if let deadline = record.deadline { actions.append(.cancelTimer(deadline)) }
            let outcome: JobOutcome = switch completion {
            case .value(let envelope): .value(envelope)
            case .failure(let report): .failure(JobError(report: report, jobType: record.jobType, daemon: slots[index].identity))
            }
            actions.append(.resolve(record.resolver, outcome))
        }
        actions += dismissIfRetired(index)
        actions += idleCheck(index)
        return actions
    }

    // MARK: Scaling down

    /// When `slot`'s worker holds nothing, the time it may sit so before it retires
    /// (in a pool that shrinks).
    func idleCheck(_ index: Int) -> [DispatcherAction] {
        guard let idleTime = scaling.idleTime, isIdle(index) else { return [] }
        return [.schedule(.idle(slot: index, instance: slots[index].instance, assigned: slots[index].assigned), after: idleTime)]
    }

    /// Whether the worker of `index` has nothing to do: no job, no work waiting for it,
    /// no actor call, no actor.
    private func isIdle(_ index: Int) -> Bool {
        slots[index].isIdle && slots[index].pinned.isEmpty && actors.perSlot[index].sent.isEmpty && actors.perSlot[index].actorCount == 0
            && !actors.routes.values.contains { $0.slot == index && !$0.isPooled }
    }

    /// The idle time of `index`'s worker passed: if it stayed idle all along (it was sent
    /// nothing since) and the pool keeps enough workers without it, it retires; its slot parks.
    private mutating func retireIfIdle(_ index: Int, instance: Int, assigned: Int) -> [DispatcherAction] {
        guard phase == .running, slots[index].instance == instance, slots[index].assigned == assigned, isIdle(index),
              scaling.mayRetireIdle(staying: slots.staying) else { return [] }
        slots[index].noteRetiring(.idle)
        return dismissIfRetired(index)
    }

    // MARK: Retiring

    /// The daemon of `slot` says it retires (`exitCode`): it gets no more work, and is told
    /// to exit once it has answered what it holds.
    mutating func daemonRetiring(slot index: Int, instance: Int, exitCode: UInt8) -> [DispatcherAction] {
        guard slots[index].instance == instance, let link = slots[index].link else { return [] }
        guard let code = DaemonExitCode(rawValue: Int32(exitCode)), code.isRetirement else { return [.close(link)] }
        slots[index].noteRetiring(code)
        // Jobs waiting for this slot only (round-robin) wait for the next daemon in it.
        return dismissIfRetired(index)
    }

    /// Replaces the daemon of `slot` by a fresh one, as if it retired: it gets no more
    /// work, finishes what it holds, and exits; a new daemon takes the slot. Its actors
    /// are lost with it. Returns the instance the slot has now.
    mutating func restart(slot index: Int) -> (instance: Int, actions: [DispatcherAction]) {
        guard slots.indices.contains(index) else { return (0, []) }
        guard phase == .running, slots[index].acceptsWork else { return (slots[index].instance, []) }
        slots[index].noteRetiring(.wallTime)
        return (slots[index].instance, dismissIfRetired(index))
    }

    /// Sends `shutdown` to a retiring daemon that holds nothing any more.
    func dismissIfRetired(_ index: Int) -> [DispatcherAction] {
        guard case .online(let link, _, let departure) = slots[index].state, departure.retiring != nil,
              slots[index].inFlight.isEmpty, actors.perSlot[index].sent.isEmpty else { return [] }
        return [.send(link, .plain(.shutdown))]
    }

    // MARK: Cancellation and time limits

    /// Cancels a job on behalf of its handle.
    mutating func cancel(job id: UInt64) -> [DispatcherAction] {
        guard let record = jobs[id] else { return [] }
        return stop(record, JobError(.cancelled, "the job was cancelled", jobType: record.jobType, daemon: record.slot.map { slots[$0].identity }))
    }

    /// A scheduled event is due.
    mutating func timerFired(_ event: TimerEvent) -> [DispatcherAction] {
        switch event {
        case .timeout(let id, let attempt):
            // The deadline of an attempt that ended (its daemon died and the job waits, or
            // runs again) is not the job's any more.
            guard jobs.isUnderWay(id, attempt: attempt), let record = jobs[id], let timeout = record.timeout else { return [] }
            let daemon = record.slot.map { slots[$0].identity }
            return [.observe(.timedOut(job: id, jobType: record.jobType, daemon: daemon))]
                + stop(record, JobError(.timedOut, "the job did not finish within \(timeout)", jobType: record.jobType, daemon: daemon))
        case .cancelGrace(let index, let instance, let id):
            // A daemon still holding a cancelled job is killed.
            guard slots[index].instance == instance, slots[index].inFlight.contains(id) else { return [] }
            slots[index].noteKill(.unresponsive)
            let killed = DispatcherAction.observe(.killedUnresponsive(slots[index].identity, job: id))
            if let pid = slots[index].process?.pid { return [killed, .signal(pid: pid, signal: SIGKILL)] }
            // A daemon deployed by hand is stopped by closing its connection: it exits.
            return [killed] + (slots[index].link.map { [.close($0)] } ?? [])
        case .stopGrace(let index, let instance):
            guard slots[index].instance == instance, let pid = slots[index].process?.pid else { return [] }
            return [.signal(pid: pid, signal: SIGKILL)]
        case .callTimeout(let id):
            guard let call = actors.calls[id] else { return [] }
            return stopCall(id, JobError(.timedOut, "the call did not finish within \(call.timeout.map { "\($0)" } ?? "its time limit")", jobType: call.display))
        case .launchDeadline(let index, let instance):
            // A launch that has not connected in time is stopped; its end is a failed start.
            guard phase == .running, slots[index].instance == instance, slots[index].isStarting else { return [] }
            slots.launchTimedOut(index)
            return slots[index].process.map { [.signal(pid: $0.pid, signal: SIGKILL)] } ?? []
        case .idle(let index, let instance, let assigned):
            return retireIfIdle(index, instance: instance, assigned: assigned)
        case .exitDrain(let index, let instance):
            return exitDrained(slot: index, instance: instance)
        case .disconnectGrace(let index, let instance):
            guard slots[index].instance == instance, case .closing(let process?, _) = slots[index].state else { return [] }
            slots[index].noteKill(.connectionFailed("the daemon closed its connection and did not exit"))
            return [.signal(pid: process.pid, signal: SIGKILL)]
        }
    }

    /// Resolves `record` with `error` and stops its work: a waiting job is dropped; a
    /// running one is cancelled in its daemon, which is killed if it does not answer
    /// within the grace period.
    private mutating func stop(_ record: JobQueue.Record, _ error: JobError) -> [DispatcherAction] {
        _ = jobs.remove(record.id)
        var actions: [DispatcherAction] = [.resolve(record.resolver, .failure(error))]
        guard let index = record.slot else {
            jobs.withdraw(record.id)
            for slot in slots.indices {
                if let position = slots[slot].pinned.firstIndex(of: record.id) { slots[slot].pinned.remove(at: position) }
            }
            return actions
        }
        if let deadline = record.deadline { actions.append(.cancelTimer(deadline)) }
        if let link = slots[index].link {
            actions.append(.send(link, .plain(.cancel(requestID: record.id))))
        }
        actions.append(.schedule(.cancelGrace(slot: index, instance: slots[index].instance, job: record.id), after: cancellationGrace))
        return actions
    }
}
