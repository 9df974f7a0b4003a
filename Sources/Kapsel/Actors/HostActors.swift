import Distributed
import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization

/// The host side of a pool's actor system: routes calls to daemons through the
/// dispatcher, and tracks proxies so that a daemon releases an actor once the host has
/// dropped every proxy of it.
///
/// The runtime never tells a system that a proxy went away, so every proxy is made here
/// (in `resolve`), held weakly, and the table is swept periodically: an id whose proxy
/// is gone is released, with the number of references the host had received, so a
/// reference still on its way from the daemon keeps the actor alive.
final class HostActors: Sendable {
    private struct Entry {
        weak var proxy: (any DistributedActor)?
        var received = 0
        var hadProxy = false
    }

    let dispatcher: Dispatcher
    let defaultTimeout: Duration?
    private let entries = Mutex<[KapselActorID: Entry]>([:])

    init(dispatcher: Dispatcher, defaultTimeout: Duration?) {
        self.dispatcher = dispatcher
        self.defaultTimeout = defaultTimeout
    }

    /// The live proxy of `id`, or a new one made by `make`.
    func proxy<Act: DistributedActor>(for id: KapselActorID, make: () throws -> Act?) throws -> Act? {
        if let existing = entries.withLock({ $0[id]?.proxy }) as? Act { return existing }
        guard let made = try make() else { return nil }
        return entries.withLock { entries in
            if let raced = entries[id]?.proxy as? Act { return raced }
            var entry = entries[id] ?? Entry()
            entry.proxy = made
            entry.hadProxy = true
            entries[id] = entry
            return made
        }
    }

    /// The host received a reference to `id` (a creation, or a result carrying it).
    func received(_ id: KapselActorID) {
        entries.withLock { $0[id, default: Entry()].received += 1 }
    }

    /// Ids whose proxies are all gone, with the references received for each; forgotten here.
    func sweep() -> [ActorRelease] {
        entries.withLock { entries in
            let gone = entries.filter { $0.value.hadProxy && $0.value.proxy == nil }
            for id in gone.keys { entries.removeValue(forKey: id) }
            return gone.map { ActorRelease(actor: $0.key.wire, count: UInt32(clamping: max($0.value.received, 1))) }
        }
    }

    /// Sends a call (or a creation) and waits for its end.
    func call(
        _ id: KapselActorID, kind: CallRequest.Kind = .invoke, target: String, display: String,
        envelope: Envelope, timeout: Duration?, creation: ActorCreation? = nil
    ) async throws -> Envelope {
        let callID = dispatcher.makeJobID()
        let resolver = CallResolver(display: display)
        let call = ActorRoutes.CallRecord(id: callID, kind: kind, actor: id, name: target, display: display, envelope: envelope, resolver: resolver, timeout: timeout)
        return try await withTaskCancellationHandler {
            try await resolver.wait { [dispatcher] in
                dispatcher.perform { $0.actorCall(call, creation: creation) }
            }
        } onCancel: { [dispatcher] in
            dispatcher.perform { $0.cancelCall(callID) }
        }
    }
}

/// What creating an actor takes, kept to create it again under `RestartPolicy.recreate`.
struct ActorCreation: Sendable {
    let typeName: String
    /// The actor's configuration.
    let envelope: Envelope
    let placement: ActorPlacement
    let restart: RestartPolicy
    let pooled: Bool
}

/// Resolves one call: hands the raw result (bytes and attachments) to the awaiting task.
final class CallResolver: JobResolver {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Envelope, any Error>)
        case resolved(Result<Envelope, JobError>)
    }

    private let state = Mutex<State>(.idle)
    let display: String

    init(display: String) {
        self.display = display
    }

    /// Calls `start`, then waits for the resolution.
    func wait(start: () -> Void) async throws -> Envelope {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<Envelope, JobError>? = state.withLock { state in
                if case .resolved(let result) = state { return result }
                state = .waiting(continuation)
                return nil
            }
            if let ready {
                continuation.resume(with: ready.mapError { $0 as any Error })
            } else {
                start()
            }
        }
    }

    func resolve(_ outcome: JobOutcome) -> Bool {
        let result: Result<Envelope, JobError> = switch outcome {
        case .value(let envelope): .success(envelope)
        case .failure(let error): .failure(error)
        }
        let waiter: CheckedContinuation<Envelope, any Error>?? = state.withLock { state in
            switch state {
            case .resolved: return nil
            case .idle:
                state = .resolved(result)
                return .some(nil)
            case .waiting(let continuation):
                state = .resolved(result)
                return .some(continuation)
            }
        }
        guard let waiter else { return false }
        waiter?.resume(with: result.mapError { $0 as any Error })
        return true
    }
}
