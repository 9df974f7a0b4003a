import Distributed
import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization

/// The distributed actor system of Kapsel: actors live in daemons, the host holds
/// proxies. It uses the same connections, dispatcher and shared memory as jobs.
///
/// A `Daemons` pool has one (`daemons.actorSystem`); each daemon has its own, which
/// hosts the actors. You rarely touch it directly: create actors with
/// `daemons.spawn(_:configuration:on:restart:)` and call them.
///
/// Calls on one actor run one at a time, in the order they arrive; calls on different
/// actors of a daemon run concurrently. A call's time limit comes from
/// `KapselActorSystem.$callTimeout` (task-local) or `DaemonOptions.actorCallTimeout`.
public final class KapselActorSystem: DistributedActorSystem, Sendable {
    public typealias ActorID = KapselActorID
    public typealias InvocationEncoder = KapselInvocationEncoder
    public typealias InvocationDecoder = KapselInvocationDecoder
    public typealias ResultHandler = KapselResultHandler
    public typealias SerializationRequirement = Codable

    enum Role: Sendable {
        case host(HostActors)
        case daemon(DaemonActors)
    }

    let role: Role
    let inlineLimit: Int
    private let locals = Mutex<[KapselActorID: WeakActor]>([:])
    private let claimed = Mutex<Set<KapselActorID>>([])
    private let nextSerial = Atomic<UInt64>(1)

    /// The id the next actor created in this task gets (creation by a factory).
    @TaskLocal static var preassignedID: KapselActorID?
    /// Set while the runtime builds a proxy inside `resolve`.
    @TaskLocal static var buildingProxy = false

    /// The time limit of calls made in the current task, overriding the pool's default.
    ///
    /// ```swift
    /// try await KapselActorSystem.$callTimeout.withValue(.seconds(2)) {
    ///     try await model.fit(data)
    /// }
    /// ```
    @TaskLocal public static var callTimeout: Duration?

    init(role: Role, inlineLimit: Int) {
        self.role = role
        self.inlineLimit = inlineLimit
    }

    // MARK: Identities

    /// A fresh id named by the host.
    func mintHostID() -> KapselActorID {
        .host(serial: nextSerial.wrappingAdd(1, ordering: .relaxed).oldValue)
    }

    /// The id the next actor created in this task gets: a creation's pre-assigned id,
    /// taken once (an actor its initializer creates gets a fresh one).
    public func assignID<Act>(_ actorType: Act.Type) -> KapselActorID where Act: DistributedActor, KapselActorID == Act.ID {
        if let preassigned = Self.preassignedID, claimed.withLock({ $0.insert(preassigned).inserted }) { return preassigned }
        let serial = nextSerial.wrappingAdd(1, ordering: .relaxed).oldValue
        switch role {
        case .host:
            return .host(serial: serial)
        case .daemon(let daemon):
            let (slot, instance) = daemon.identity
            return KapselActorID(WireActorID(creator: UInt32(slot + 1), instance: UInt32(instance), serial: serial))
        }
    }

    public func actorReady<Act>(_ actor: Act) where Act: DistributedActor, KapselActorID == Act.ID {
        let count = locals.withLock { locals in
            locals[actor.id] = WeakActor(actor: actor)
            return locals.count
        }
        if case .daemon(let daemon) = role { daemon.countChanged(count) }
    }

    public func resignID(_ id: KapselActorID) {
        let count = locals.withLock { locals in
            locals.removeValue(forKey: id)
            return locals.count
        }
        if case .daemon(let daemon) = role { daemon.countChanged(count) }
    }

    /// Creates an actor with `make` under the pre-assigned `id`.
    func create(_ id: KapselActorID, _ make: () async throws -> any DistributedActor) async throws -> any DistributedActor {
        defer { claimed.withLock { _ = $0.remove(id) } }
        return try await Self.$preassignedID.withValue(id) { try await make() }
    }

    /// The live actor with `id` in this process, if any.
    func localActor(_ id: KapselActorID) -> (any DistributedActor)? {
        locals.withLock { $0[id]?.actor }
    }

    public func resolve<Act>(id: KapselActorID, as actorType: Act.Type) throws -> Act? where Act: DistributedActor, KapselActorID == Act.ID {
        if let local = localActor(id) {
            guard let typed = local as? Act else {
                throw ActorSystemError("\(id) is a \(type(of: local)), not a \(Act.self)")
            }
            return typed
        }
        guard case .host(let host) = role, !Self.buildingProxy, let system = self as? Act.ActorSystem else { return nil }
        return try host.proxy(for: id) {
            try Self.$buildingProxy.withValue(true) { try Act.resolve(id: id, using: system) }
        }
    }

    // MARK: References crossing processes

    /// An actor id was encoded: a daemon sending a reference keeps the actor alive for the host.
    func referenceEncoded(_ id: KapselActorID) {
        guard case .daemon(let daemon) = role, let actor = localActor(id) else { return }
        daemon.export(actor)
    }

    /// An actor id was decoded: the host counts the references it received.
    func referenceDecoded(_ id: KapselActorID) {
        guard case .host(let host) = role else { return }
        host.received(id)
    }

    // MARK: Calls

    public func makeInvocationEncoder() -> KapselInvocationEncoder {
        KapselInvocationEncoder(system: self, inlineLimit: inlineLimit)
    }

    public func remoteCall<Act, Err, Res>(
        on actor: Act, target: RemoteCallTarget, invocation: inout KapselInvocationEncoder, throwing: Err.Type, returning: Res.Type
    ) async throws -> Res where Act: DistributedActor, Act.ID == KapselActorID, Err: Error, Res: Codable {
        let envelope = try await call(actor.id, target: target, invocation: &invocation)
        do {
            return try envelope.decode(Res.self, actorSystem: self)
        } catch {
            throw JobError(.resultDecodingFailed, "the result does not decode as \(Res.self): \(error)", jobType: target.description)
        }
    }

    public func remoteCallVoid<Act, Err>(
        on actor: Act, target: RemoteCallTarget, invocation: inout KapselInvocationEncoder, throwing: Err.Type
    ) async throws where Act: DistributedActor, Act.ID == KapselActorID, Err: Error {
        _ = try await call(actor.id, target: target, invocation: &invocation)
    }

    private func call(_ id: KapselActorID, target: RemoteCallTarget, invocation: inout KapselInvocationEncoder) async throws -> Envelope {
        guard case .host(let host) = role else {
            throw ActorSystemError("\(id) is not in this daemon; a daemon calls only its own actors (pass references back to the host instead)")
        }
        let envelope: Envelope
        do {
            envelope = try invocation.envelope()
        } catch {
            throw JobError(.jobEncodingFailed, "the arguments do not encode: \(error)", jobType: target.description)
        }
        return try await host.call(id, target: target.identifier, display: target.description, envelope: envelope, timeout: Self.callTimeout ?? host.defaultTimeout)
    }
}

/// A weak reference to a local actor.
struct WeakActor {
    weak var actor: (any DistributedActor)?
}
