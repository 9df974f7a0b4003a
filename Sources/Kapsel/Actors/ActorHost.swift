import DequeModule
import Distributed
import KapselSharedMemory
import KapselWire
import Synchronization

/// Runs the daemon's side of actor calls: creations, and calls in one mailbox per actor.
///
/// Calls arrive from the thread that reads the connection. Calls to one actor run one
/// after another in arrival order; calls to different actors run concurrently. With
/// `startsInline` (a local connection, read by a `ReaderRelay`) each call starts on the
/// thread that delivers it (`Task.immediate`) — a call that never suspends runs and
/// answers with no hop, and one that runs long leaves the reading to the relay's other
/// thread; over TCP it starts on the global executor, keeping NIO's loop free for the
/// heartbeats. Its result goes back through the connection's writer with its shared
/// memory, from the thread that ran its end, and the actor's next call starts there. The
/// mailboxes are behind a lock.
final class ActorHost: Sendable {
    private struct Waiting: Sendable {
        var request: CallRequest
        /// The arguments (or configuration) with their shared memory, or why that memory
        /// could not be received.
        var envelope: Result<Envelope, any Error>
    }

    private struct Mailbox {
        var waiting: Deque<Waiting> = []
        var running: UInt64?
    }

    private struct State: ~Copyable {
        var mailboxes: [KapselActorID: Mailbox] = [:]
        /// Calls and creations under way, with their task once `Task.immediate` returned it.
        var active: [UInt64: Task<Void, Never>?] = [:]
    }

    private let writer: ConnectionWriter
    private let carrier: any AttachmentCarrier
    private let executor: ActorCallExecutor
    private let context: DaemonContext
    private let startsInline: Bool
    private let state = Mutex(State())

    init(
        writer: ConnectionWriter, carrier: any AttachmentCarrier, system: KapselActorSystem, factories: [String: ActorFactory], context: DaemonContext,
        startsInline: Bool
    ) {
        self.writer = writer
        self.carrier = carrier
        self.executor = ActorCallExecutor(system: system, factories: factories)
        self.context = context
        self.startsInline = startsInline
    }

    func handle(_ request: CallRequest) {
        let waiting = Waiting(request: request, envelope: Result {
            Envelope(payload: request.payload, attachments: try carrier.receiveAttachments(request.attachments, tag: request.callID))
        })
        switch request.kind {
        case .create:
            start(waiting)
        case .invoke:
            let id = KapselActorID(request.actor)
            state.withLock { $0.mailboxes[id, default: Mailbox()].waiting.append(waiting) }
            startNext(in: id)
        }
    }

    /// The connection is gone: waiting calls are dropped, running ones cancelled (nobody
    /// will read their results).
    func abandon() {
        let tasks = state.withLock { state in
            state.mailboxes = [:]
            return Array(state.active.values)
        }
        for task in tasks { task?.cancel() }
    }

    /// Cancels call `callID` if it is here: a running one through task cancellation, a
    /// waiting one at once. Returns whether it was found.
    @discardableResult
    func cancel(_ callID: UInt64) -> Bool {
        enum Found { case running(Task<Void, Never>?), waiting, none }
        let found = state.withLock { state -> Found in
            if let task = state.active[callID] { return .running(task) }
            for (id, mailbox) in state.mailboxes {
                if let position = mailbox.waiting.firstIndex(where: { $0.request.callID == callID }) {
                    state.mailboxes[id]?.waiting.remove(at: position)
                    return .waiting
                }
            }
            return .none
        }
        switch found {
        case .running(let task):
            task?.cancel()
        case .waiting:
            let report = FailureReport(reason: .cancelled, errorType: "Swift.CancellationError", message: "the call was cancelled before it started", location: "actor mailbox")
            writer.send(.reply(to: callID, .failure(report), isCall: true))
        case .none:
            return false
        }
        return true
    }

    private func startNext(in id: KapselActorID) {
        let next = state.withLock { state -> Waiting? in
            guard var mailbox = state.mailboxes[id], mailbox.running == nil, let next = mailbox.waiting.popFirst() else { return nil }
            mailbox.running = next.request.callID
            state.mailboxes[id] = mailbox
            return next
        }
        if let next { start(next) }
    }

    private func start(_ waiting: Waiting) {
        let request = waiting.request
        state.withLock { state in
            let none: Task<Void, Never>? = nil
            state.active[request.callID] = .some(none)
        }
        let envelope = waiting.envelope
        let work: @Sendable () async -> Void = { [self, executor, context] in
            let completion = await DaemonContext.$current.withValue(context) {
                await executor.perform(request, envelope)
            }
            finished(request, completion)
        }
        let task = if let preferred = executor.callExecutor(for: request) {
            Task(executorPreference: preferred, operation: work)
        } else if startsInline {
            Task.immediate(operation: work)
        } else {
            Task(operation: work)
        }
        // A call that finished without suspending is no longer active.
        state.withLock { state in
            if state.active[request.callID] != nil { state.active[request.callID] = task }
        }
    }

    private func finished(_ request: CallRequest, _ completion: Completion) {
        state.withLock { _ = $0.active.removeValue(forKey: request.callID) }
        writer.send(.reply(to: request.callID, completion, isCall: true))
        guard request.kind == .invoke else { return }
        let id = KapselActorID(request.actor)
        state.withLock { state in
            state.mailboxes[id]?.running = nil
            if state.mailboxes[id]?.waiting.isEmpty == true { state.mailboxes.removeValue(forKey: id) }
        }
        startNext(in: id)
    }
}

/// Carries out one creation or call in the daemon's actor system.
private struct ActorCallExecutor: Sendable {
    let system: KapselActorSystem
    let factories: [String: ActorFactory]

    /// Where a call to its actor runs (`KapselActor.callExecutor`); nil for creations,
    /// which run like any call.
    func callExecutor(for request: CallRequest) -> (any TaskExecutor)? {
        guard request.kind == .invoke, let actor = system.localActor(KapselActorID(request.actor)) as? any KapselActor else { return nil }
        return type(of: actor).callExecutor
    }

    func perform(_ request: CallRequest, _ received: Result<Envelope, any Error>) async -> Completion {
        let id = KapselActorID(request.actor)
        func failure(_ reason: FailureReport.Reason, _ message: String, _ error: (any Error)? = nil) -> Completion {
            .failure(FailureReport(reason: reason, errorType: error.map { String(reflecting: type(of: $0)) } ?? "Kapsel.ActorSystemError", message: message, location: request.name))
        }
        let envelope: Envelope
        switch received {
        case .success(let value): envelope = value
        case .failure(let error): return failure(.jobDecodingFailed, "the call's shared memory could not be received: \(error)", error)
        }
        switch request.kind {
        case .create:
            guard let factory = factories[request.name] else {
                return failure(.unknownJobType, "this daemon has no actor type named '\(request.name)'; list it in Kapsel.bootstrap(jobs:actors:) (it knows: \(factories.keys.sorted().joined(separator: ", ")))")
            }
            guard case .daemon(let daemon) = system.role else { return failure(.thrown, "not a daemon") }
            do {
                let actor = try await system.create(id) { try await factory.make(system, envelope) }
                daemon.export(actor)
                return .value(Envelope(payload: try CompactEncoder().encode(true)))
            } catch {
                return .failure(report(for: error, at: "\(request.name).init"))
            }
        case .invoke:
            guard let actor = system.localActor(id) else {
                return failure(.thrown, "there is no \(id) in this daemon (it was released or never created here)")
            }
            let handler = KapselResultHandler(system: system, inlineLimit: system.inlineLimit, target: request.name)
            do {
                var decoder = try KapselInvocationDecoder(envelope, system: system)
                try await system.executeDistributedTarget(on: actor, target: RemoteCallTarget(request.name), invocationDecoder: &decoder, handler: handler)
            } catch {
                return failure(.jobDecodingFailed, "the call could not be executed (the daemon runs another build of the actor?): \(error)", error)
            }
            return handler.completion ?? failure(.thrown, "the call ended without a result")
        }
    }
}
