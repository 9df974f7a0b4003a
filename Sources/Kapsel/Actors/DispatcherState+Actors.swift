import KapselWire

/// Distributed actors in the dispatcher's state machine: creating them, routing calls,
/// answers, time limits, releases, and what a daemon's death does to them.
///
/// A call to an ordinary actor goes straight to its daemon; a call to a pooled actor is
/// queued like a job and goes to the first idle daemon.
extension DispatcherState {
    // MARK: Calls

    /// A call (`.invoke`) or a creation (`.create`, with `creation`).
    mutating func actorCall(_ call: ActorRoutes.CallRecord, creation: ActorCreation?) -> [DispatcherAction] {
        guard phase == .running else {
            return [.resolve(call.resolver, .failure(JobError(.stopped, "the daemons were stopped", jobType: call.display)))]
        }
        if call.kind == .create, let creation {
            return create(call, creation)
        }
        if let route = actors.routes[call.actor], route.isPooled {
            jobs.add(JobQueue.Record(id: call.id, jobType: call.display, envelope: call.envelope, resolver: call.resolver, timeout: call.timeout,
                                     retriesLeft: 0, setupTemplate: nil, call: JobQueue.PooledCall(actor: call.actor, target: call.name)))
            jobs.enqueue(call.id)
            return dispatchToIdle()
        }
        guard let route = route(of: call.actor) else {
            return [.resolve(call.resolver, .failure(JobError(.actorLost, "\(call.actor) is unknown to this pool: it was released, or never created here", jobType: call.display)))]
        }
        var actions: [DispatcherAction] = []
        switch route.state {
        case .lost(let error):
            return [.resolve(call.resolver, .failure(JobError(error.code, error.message, jobType: call.display, daemon: error.daemon, termination: error.termination)))]
        case .creating:
            actors.calls[call.id] = call
            actors.routes[call.actor]?.waiting.append(call.id)
        case .live:
            actors.calls[call.id] = call
            actions += deliver(call.id, to: route.slot)
        }
        if let deadline = call.deadline, let timeout = call.timeout { actions.append(.schedule(deadline, after: timeout)) }
        return actions
    }

    private mutating func create(_ call: ActorRoutes.CallRecord, _ creation: ActorCreation) -> [DispatcherAction] {
        let slot: Int
        switch creation.placement {
        case .daemon(let index):
            guard slots.indices.contains(index), !slots[index].hasFailed else {
                return [.resolve(call.resolver, .failure(JobError(.daemonsUnavailable, "there is no usable daemon \(index) in this pool of \(slots.count)", jobType: call.display)))]
            }
            slot = index
        case .leastLoaded:
            let load = actors.loadBySlot
            // The fewest actors; among equals a running worker before a parked slot.
            func rank(_ index: Int) -> (Int, Int, Int) { (load[index] ?? 0, slots[index].isParked ? 1 : 0, index) }
            guard let best = slots.indices.filter({ !slots[$0].hasFailed }).min(by: { rank($0) < rank($1) }) else {
                return [.resolve(call.resolver, .failure(unavailableError(jobType: call.display)))]
            }
            slot = best
        }
        actors.routes[call.actor] = ActorRoutes.Route(slot: slot, instance: slots[slot].instance, creation: creation, state: .creating)
        actors.calls[call.id] = call
        return deliver(call.id, to: slot)
    }

    /// The route of `id`: known, or derived from the id of an actor a daemon created.
    private mutating func route(of id: KapselActorID) -> ActorRoutes.Route? {
        if let route = actors.routes[id] { return route }
        guard let slot = id.creatorSlot, slots.indices.contains(slot) else { return nil }
        let alive = slots[slot].instance == Int(id.wire.instance)
        let state: ActorRoutes.RouteState = alive ? .live : .lost(lostError(id, slot: slot, reason: "its daemon has been replaced"))
        let route = ActorRoutes.Route(slot: slot, instance: Int(id.wire.instance), creation: nil, state: state)
        actors.routes[id] = route
        return route
    }

    private func lostError(_ id: KapselActorID, slot: Int, reason: String, termination: ProcessTermination? = nil) -> JobError {
        JobError(.actorLost, "\(id) was lost with its daemon: \(reason)", jobType: "\(id)",
                 daemon: DaemonIdentity(index: slot, instance: actors.routes[id]?.instance ?? 0, pid: nil), termination: termination)
    }

    /// Sends call `id` to `slot`, or holds it until the daemon is online (starting a
    /// parked slot's worker for it).
    private mutating func deliver(_ id: UInt64, to slot: Int) -> [DispatcherAction] {
        guard var call = actors.calls[id] else { return [] }
        guard let link = slots[slot].link else {
            actors.perSlot[slot].waiting.append(id)
            return slots[slot].isParked && phase == .running ? relaunch(slot) : []
        }
        call.sentTo = (slot, slots[slot].instance)
        actors.calls[id] = call
        actors.perSlot[slot].sent.insert(id)
        return [.send(link, .call(callID: id, kind: call.kind, actor: call.actor.wire, name: call.name, call.envelope))]
    }

    /// Sends what waited for `slot` to come online.
    mutating func deliverWaitingCalls(_ slot: Int) -> [DispatcherAction] {
        let waiting = actors.perSlot[slot].waiting
        actors.perSlot[slot].waiting = []
        return waiting.flatMap { deliver($0, to: slot) }
    }

    /// A daemon answered a call or a creation (or a pooled call, which is a job).
    mutating func callFinished(slot: Int, instance: Int, requestID: UInt64, completion: Completion, at now: ContinuousClock.Instant) -> [DispatcherAction] {
        if jobs[requestID] != nil || slots[slot].inFlight.contains(requestID) {
            return jobFinished(slot: slot, instance: instance, requestID: requestID, completion: completion, at: now)
        }
        guard slots[slot].instance == instance, let call = actors.calls.removeValue(forKey: requestID) else { return [] }
        actors.perSlot[slot].sent.remove(call.id)
        let identity = DaemonIdentity(index: slot, instance: instance, pid: slots[slot].process?.pid)
        var actions: [DispatcherAction] = []
        if let deadline = call.deadline { actions.append(.cancelTimer(deadline)) }
        switch completion {
        case .value(let envelope):
            actions.append(.resolve(call.resolver, .value(envelope)))
            if call.kind == .create {
                actors.routes[call.actor]?.state = .live
                let waiting = actors.routes[call.actor]?.waiting ?? []
                actors.routes[call.actor]?.waiting = []
                for id in waiting { actions += deliver(id, to: slot) }
            }
        case .failure(let report):
            let error = JobError(report: report, jobType: call.display, daemon: identity)
            actions.append(.resolve(call.resolver, .failure(error)))
            if call.kind == .create {
                actions += loseRoute(call.actor, error)
            }
        }
        actions += dismissIfRetired(slot)
        actions += idleCheck(slot)
        return actions
    }

    /// Marks `id` lost and fails the calls waiting for it.
    private mutating func loseRoute(_ id: KapselActorID, _ error: JobError) -> [DispatcherAction] {
        guard var route = actors.routes[id] else { return [] }
        route.state = .lost(error)
        let waiting = route.waiting
        route.waiting = []
        actors.routes[id] = route
        var actions: [DispatcherAction] = []
        for callID in waiting {
            guard let call = actors.calls.removeValue(forKey: callID) else { continue }
            if let deadline = call.deadline { actions.append(.cancelTimer(deadline)) }
            actions.append(.resolve(call.resolver, .failure(JobError(error.code, error.message, jobType: call.display, daemon: error.daemon, termination: error.termination))))
        }
        return actions
    }

    /// Cancels a call on behalf of its caller.
    mutating func cancelCall(_ id: UInt64) -> [DispatcherAction] {
        if jobs[id] != nil { return cancel(job: id) }
        guard let call = actors.calls[id] else { return [] }
        return stopCall(id, JobError(.cancelled, "the call was cancelled", jobType: call.display))
    }

    /// Resolves call `id` with `error` and asks its daemon to stop it (cooperatively:
    /// the daemon also hosts other actors, so it is never killed for one call).
    mutating func stopCall(_ id: UInt64, _ error: JobError) -> [DispatcherAction] {
        guard let call = actors.calls.removeValue(forKey: id) else { return [] }
        var actions: [DispatcherAction] = [.resolve(call.resolver, .failure(error))]
        if let deadline = call.deadline { actions.append(.cancelTimer(deadline)) }
        if let (slot, instance) = call.sentTo, slots[slot].instance == instance {
            actors.perSlot[slot].sent.remove(id)
            if let link = slots[slot].link { actions.append(.send(link, .plain(.cancel(requestID: id)))) }
            actions += dismissIfRetired(slot)
        }
        actors.forgetWaiting(id, actor: call.actor)
        return actions
    }

    // MARK: Lifetime

    /// Registers a pooled actor: its calls go through the queue to any daemon.
    mutating func registerPooled(_ id: KapselActorID, creation: ActorCreation) {
        actors.routes[id] = ActorRoutes.Route(slot: -1, instance: 0, creation: creation, state: .live)
    }

    /// The host dropped its proxies of these actors.
    mutating func releaseActors(_ releases: [ActorRelease]) -> [DispatcherAction] {
        var bySlot: [Int: [ActorRelease]] = [:]
        for release in releases {
            let id = KapselActorID(release.actor)
            guard let route = route(of: id), !route.isPooled else { continue }
            actors.routes.removeValue(forKey: id)
            if case .live = route.state, slots[route.slot].instance == route.instance {
                bySlot[route.slot, default: []].append(release)
            }
        }
        return bySlot.sorted { $0.key < $1.key }.compactMap { slot, releases in
            slots[slot].link.map { .send($0, .plain(.releaseActors(releases))) }
        }
    }

    /// A daemon reported how many actors live in it.
    mutating func actorCountReported(slot: Int, instance: Int, count: Int) {
        guard slots[slot].instance == instance else { return }
        actors.perSlot[slot].actorCount = count
    }

    /// The daemon in `slot` died: its calls fail with the crash, and its actors are lost —
    /// or, under `RestartPolicy.recreate`, created again on the daemon that replaces it.
    mutating func actorsLost(_ slot: Int, instance: Int, pid: Int32?, termination: ProcessTermination?, output: String?) -> [DispatcherAction] {
        let identity = DaemonIdentity(index: slot, instance: instance, pid: pid)
        var actions: [DispatcherAction] = []
        for id in actors.perSlot[slot].sent.sorted() {
            guard let call = actors.calls.removeValue(forKey: id) else { continue }
            if let deadline = call.deadline { actions.append(.cancelTimer(deadline)) }
            let error = JobError(termination == nil ? .connectionLost : .crashed, "the daemon of \(call.actor) died with \(Self.explain(termination)) during the call",
                                 jobType: call.display, daemon: identity, termination: termination, daemonOutput: output)
            actions.append(.resolve(call.resolver, .failure(error)))
        }
        actors.perSlot[slot].sent = []
        actors.perSlot[slot].actorCount = 0
        for (id, route) in actors.routes.sorted(by: { $0.key.wire.serial < $1.key.wire.serial })
        where route.slot == slot && route.instance == instance && !route.isPooled {
            if let creation = route.creation, creation.restart == .recreate {
                // Created again, first thing, on the next instance; calls wait meanwhile.
                // A re-creation still waiting (this instance never came online) stays.
                actors.routes[id]?.instance = instance + 1
                actors.routes[id]?.state = .creating
                let pending = actors.perSlot[slot].waiting.contains { actors.calls[$0]?.kind == .create && actors.calls[$0]?.actor == id }
                guard !pending else { continue }
                let callID = jobs.makeInternalID()
                actors.calls[callID] = ActorRoutes.CallRecord(id: callID, kind: .create, actor: id, name: creation.typeName, display: "\(creation.typeName).init",
                                                              envelope: creation.envelope, resolver: SetupRunRecorder(), timeout: nil)
                actors.perSlot[slot].waiting.insert(callID, at: 0)
            } else {
                actions += loseRoute(id, lostError(id, slot: slot, reason: "it died with \(Self.explain(termination))", termination: termination))
            }
        }
        return actions
    }

    /// A slot given up for good: every actor routed to it is lost.
    mutating func actorsOnFailedSlot(_ slot: Int) -> [DispatcherAction] {
        var actions: [DispatcherAction] = []
        for (id, route) in actors.routes where route.slot == slot && !route.isPooled {
            actions += loseRoute(id, lostError(id, slot: slot, reason: "its daemon cannot be restarted"))
        }
        for id in actors.perSlot[slot].waiting {
            if let call = actors.calls.removeValue(forKey: id) {
                actions.append(.resolve(call.resolver, .failure(unavailableError(jobType: call.display))))
            }
        }
        actors.perSlot[slot].waiting = []
        return actions
    }

    /// Fails every call under way (the pool is stopping).
    mutating func failAllCalls(_ error: JobError) -> [DispatcherAction] {
        defer {
            actors.calls = [:]
            actors.routes = [:]
        }
        return actors.calls.values.sorted { $0.id < $1.id }.flatMap { call -> [DispatcherAction] in
            let resolve = DispatcherAction.resolve(call.resolver, .failure(JobError(error.code, error.message, jobType: call.display, daemon: error.daemon)))
            return call.deadline.map { [.cancelTimer($0), resolve] } ?? [resolve]
        }
    }
}
