import KapselSharedMemory
import KapselWire
import NIOCore

/// Distributed actors in the dispatcher's state machine: where each actor lives, the
/// calls under way, and what a daemon's death does to them.
///
/// A call to an ordinary actor goes straight to its daemon (actors of one daemon run
/// calls concurrently, so the one-job-at-a-time rule does not apply). A call to a pooled
/// actor is queued like a job and goes to the first idle daemon.
extension DispatcherState {
    /// A call or a creation not resolved yet.
    struct CallRecord {
        let id: UInt64
        let kind: CallRequest.Kind
        let actor: KapselActorID
        /// The call target's identifier, or the actor type's registered name.
        let name: String
        /// A readable name for errors.
        let display: String
        let payload: ByteBuffer
        let attachments: [SharedStorage]
        let resolver: any JobResolver
        let timeout: Duration?
        /// Where it was sent, once sent.
        var sentTo: (slot: Int, instance: Int)?
    }

    /// Where an actor lives.
    struct ActorRoute {
        var slot: Int
        var instance: Int
        /// How it was created (nil for an actor a daemon created itself).
        let creation: ActorCreation?
        var state: RouteState
        /// Calls held until the actor exists (being created or re-created).
        var waiting: [UInt64] = []
    }

    enum RouteState {
        case creating
        case live
        case lost(JobError)
    }

    // MARK: Calls

    /// A call (`.invoke`) or a creation (`.create`, with `creation`).
    mutating func actorCall(_ call: CallRecord, creation: ActorCreation?) -> [DispatcherAction] {
        guard phase == .running else {
            return [.resolve(call.resolver, .failure(JobError(.stopped, "the daemons were stopped", jobType: call.display)))]
        }
        if call.kind == .create, let creation {
            return create(call, creation)
        }
        if let route = routes[call.actor], route.creation?.pooled == true {
            let record = Record(id: call.id, jobType: call.display, payload: call.payload, attachments: call.attachments, resolver: call.resolver,
                                timeout: call.timeout, retriesLeft: 0, setupTemplate: nil, call: (call.actor, call.name))
            jobs[call.id] = record
            queue.append(call.id)
            return dispatchToIdle()
        }
        guard let route = route(of: call.actor) else {
            return [.resolve(call.resolver, .failure(JobError(.actorLost, "\(call.actor) is unknown to this pool: it was released, or never created here", jobType: call.display)))]
        }
        var actions: [DispatcherAction] = []
        if let timeout = call.timeout { actions.append(.schedule(.callTimeout(call: call.id), after: timeout)) }
        switch route.state {
        case .lost(let error):
            return [.resolve(call.resolver, .failure(JobError(error.code, error.message, jobType: call.display, daemon: error.daemon, termination: error.termination)))]
        case .creating:
            calls[call.id] = call
            routes[call.actor]?.waiting.append(call.id)
        case .live:
            calls[call.id] = call
            actions += deliver(call.id, to: route.slot)
        }
        return actions
    }

    private mutating func create(_ call: CallRecord, _ creation: ActorCreation) -> [DispatcherAction] {
        let slot: Int
        switch creation.placement {
        case .daemon(let index):
            guard slots.indices.contains(index), slots[index].phase != .failed else {
                return [.resolve(call.resolver, .failure(JobError(.daemonsUnavailable, "there is no usable daemon \(index) in this pool of \(slots.count)", jobType: call.display)))]
            }
            slot = index
        case .leastLoaded:
            let load = Dictionary(grouping: routes.values.filter { $0.creation?.pooled != true }, by: \.slot).mapValues(\.count)
            guard let best = slots.indices.filter({ slots[$0].phase != .failed }).min(by: { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }) else {
                return [.resolve(call.resolver, .failure(unavailableError(jobType: call.display)))]
            }
            slot = best
        }
        routes[call.actor] = ActorRoute(slot: slot, instance: slots[slot].instance, creation: creation, state: .creating)
        calls[call.id] = call
        return deliver(call.id, to: slot)
    }

    /// The route of `id`: known, or derived from the id of an actor a daemon created.
    private mutating func route(of id: KapselActorID) -> ActorRoute? {
        if let route = routes[id] { return route }
        guard let slot = id.creatorSlot, slots.indices.contains(slot) else { return nil }
        let alive = slots[slot].instance == Int(id.wire.instance)
        let route = ActorRoute(slot: slot, instance: Int(id.wire.instance), creation: nil, state: alive ? .live : .lost(lostError(id, slot: slot, reason: "its daemon has been replaced")))
        routes[id] = route
        return route
    }

    private func lostError(_ id: KapselActorID, slot: Int, reason: String, termination: ProcessTermination? = nil) -> JobError {
        JobError(.actorLost, "\(id) was lost with its daemon: \(reason)", jobType: "\(id)", daemon: DaemonIdentity(index: slot, instance: routes[id]?.instance ?? 0, pid: nil), termination: termination)
    }

    /// Sends call `id` to `slot`, or holds it until the daemon is online.
    private mutating func deliver(_ id: UInt64, to slot: Int) -> [DispatcherAction] {
        guard var call = calls[id] else { return [] }
        guard slots[slot].phase == .online, let link = slots[slot].link else {
            slots[slot].waitingCalls.append(id)
            return []
        }
        call.sentTo = (slot, slots[slot].instance)
        calls[id] = call
        slots[slot].directCalls.insert(id)
        let request = CallRequest(callID: id, kind: call.kind, actor: call.actor.wire, name: call.name, payload: call.payload)
        return [.send(link, .call(request), attachments: call.attachments)]
    }

    /// Sends what waited for `slot` to come online.
    mutating func deliverWaitingCalls(_ slot: Int) -> [DispatcherAction] {
        let waiting = slots[slot].waitingCalls
        slots[slot].waitingCalls = []
        return waiting.flatMap { deliver($0, to: slot) }
    }

    /// A daemon answered a call or a creation.
    mutating func callFinished(slot: Int, instance: Int, result: RunResult, attachments: SharedAttachmentReader?) -> [DispatcherAction] {
        if jobs[result.requestID] != nil {
            return jobFinished(slot: slot, instance: instance, result: result, attachments: attachments)
        }
        guard slots[slot].instance == instance, let call = calls.removeValue(forKey: result.requestID) else { return [] }
        slots[slot].directCalls.remove(call.id)
        let identity = DaemonIdentity(index: slot, instance: instance, pid: slots[slot].pid)
        var actions: [DispatcherAction] = []
        switch result.outcome {
        case .value(let bytes):
            actions.append(.resolve(call.resolver, .value(bytes, attachments)))
            if call.kind == .create {
                routes[call.actor]?.state = .live
                let waiting = routes[call.actor]?.waiting ?? []
                routes[call.actor]?.waiting = []
                for id in waiting { actions += deliver(id, to: slot) }
            }
        case .failure(let report):
            let error = JobError(report: report, jobType: call.display, daemon: identity)
            actions.append(.resolve(call.resolver, .failure(error)))
            if call.kind == .create {
                actions += loseRoute(call.actor, error)
            }
        }
        return actions
    }

    /// Marks `id` lost and fails the calls waiting for it.
    private mutating func loseRoute(_ id: KapselActorID, _ error: JobError) -> [DispatcherAction] {
        guard var route = routes[id] else { return [] }
        route.state = .lost(error)
        let waiting = route.waiting
        route.waiting = []
        routes[id] = route
        return waiting.compactMap { callID in
            calls.removeValue(forKey: callID).map { call in
                .resolve(call.resolver, .failure(JobError(error.code, error.message, jobType: call.display, daemon: error.daemon, termination: error.termination)))
            }
        }
    }

    /// Cancels a call on behalf of its caller.
    mutating func cancelCall(_ id: UInt64) -> [DispatcherAction] {
        if jobs[id] != nil { return cancel(job: id) }
        guard let call = calls[id] else { return [] }
        return stopCall(id, JobError(.cancelled, "the call was cancelled", jobType: call.display))
    }

    /// Resolves call `id` with `error` and asks its daemon to stop it (cooperatively:
    /// the daemon also hosts other actors, so it is never killed for one call).
    mutating func stopCall(_ id: UInt64, _ error: JobError) -> [DispatcherAction] {
        guard let call = calls.removeValue(forKey: id) else { return [] }
        var actions: [DispatcherAction] = [.resolve(call.resolver, .failure(error))]
        if let (slot, instance) = call.sentTo, slots[slot].instance == instance {
            slots[slot].directCalls.remove(id)
            if let link = slots[slot].link { actions.append(.send(link, .cancel(requestID: id))) }
        }
        for slot in slots.indices { slots[slot].waitingCalls.removeAll { $0 == id } }
        routes[call.actor]?.waiting.removeAll { $0 == id }
        return actions
    }

    // MARK: Lifetime

    /// The host dropped its proxies of these actors.
    mutating func releaseActors(_ releases: [ActorRelease]) -> [DispatcherAction] {
        var bySlot: [Int: [ActorRelease]] = [:]
        for release in releases {
            let id = KapselActorID(release.actor)
            guard let route = route(of: id), route.creation?.pooled != true else { continue }
            routes.removeValue(forKey: id)
            if case .live = route.state, slots[route.slot].instance == route.instance {
                bySlot[route.slot, default: []].append(release)
            }
        }
        return bySlot.compactMap { slot, releases in
            slots[slot].link.map { .send($0, .releaseActors(releases)) }
        }
    }

    /// A daemon reported how many actors live in it.
    mutating func actorCountReported(slot: Int, instance: Int, count: Int) {
        guard slots[slot].instance == instance else { return }
        slots[slot].actorCount = count
    }

    /// The daemon in `slot` died: its calls fail with the crash, and its actors are lost —
    /// or, under `RestartPolicy.recreate`, created again on the daemon that replaces it.
    mutating func actorsLost(_ slot: Int, instance: Int, termination: ProcessTermination?, output: String?) -> [DispatcherAction] {
        let identity = DaemonIdentity(index: slot, instance: instance, pid: nil)
        var actions: [DispatcherAction] = []
        for id in slots[slot].directCalls.sorted() {
            guard let call = calls.removeValue(forKey: id) else { continue }
            let error = JobError(termination == nil ? .connectionLost : .crashed, "the daemon of \(call.actor) died with \(Self.explain(termination)) during the call", jobType: call.display, daemon: identity, termination: termination, daemonOutput: output)
            actions.append(.resolve(call.resolver, .failure(error)))
        }
        slots[slot].directCalls = []
        slots[slot].actorCount = 0
        for (id, route) in routes where route.slot == slot && route.instance == instance && route.creation?.pooled != true {
            if let creation = route.creation, creation.restart == .recreate {
                // Created again, first thing, on the next instance; calls wait meanwhile.
                routes[id]?.instance = instance + 1
                routes[id]?.state = .creating
                let callID = nextInternal()
                calls[callID] = CallRecord(id: callID, kind: .create, actor: id, name: creation.typeName, display: "\(creation.typeName).init",
                                           payload: creation.payload, attachments: creation.attachments, resolver: SetupRunRecorder(), timeout: nil)
                slots[slot].waitingCalls.insert(callID, at: 0)
            } else {
                actions += loseRoute(id, lostError(id, slot: slot, reason: "it died with \(Self.explain(termination))", termination: termination))
            }
        }
        return actions
    }

    /// A slot given up for good: every actor routed to it is lost.
    mutating func actorsOnFailedSlot(_ slot: Int) -> [DispatcherAction] {
        var actions: [DispatcherAction] = []
        for (id, route) in routes where route.slot == slot && route.creation?.pooled != true {
            actions += loseRoute(id, lostError(id, slot: slot, reason: "its daemon cannot be restarted"))
        }
        for id in slots[slot].waitingCalls {
            if let call = calls.removeValue(forKey: id) {
                actions.append(.resolve(call.resolver, .failure(unavailableError(jobType: call.display))))
            }
        }
        slots[slot].waitingCalls = []
        return actions
    }

    /// Fails every call under way (the pool is stopping).
    mutating func failAllCalls(_ error: JobError) -> [DispatcherAction] {
        defer {
            calls = [:]
            routes = [:]
        }
        return calls.values.sorted { $0.id < $1.id }.map { call in
            .resolve(call.resolver, .failure(JobError(error.code, error.message, jobType: call.display, daemon: error.daemon)))
        }
    }
}
