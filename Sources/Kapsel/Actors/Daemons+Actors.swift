import Distributed
import KapselSharedMemory
import KapselWire

extension Daemons {
    /// Creates a distributed actor in a daemon and returns its proxy: method calls on it
    /// run in the daemon.
    ///
    /// ```swift
    /// let counter = try await daemons.spawn(Counter.self, configuration: 10, on: .daemon(1))
    /// let total = try await counter.add(5)
    /// ```
    ///
    /// - Parameters:
    ///   - type: the actor type (listed in `Kapsel.bootstrap(jobs:actors:)` of the daemons).
    ///   - configuration: what the actor's `init(actorSystem:configuration:)` gets.
    ///   - placement: which daemon; the one holding the fewest actors by default.
    ///   - restart: what happens when its daemon dies (by default its calls then fail
    ///     with `.actorLost`).
    ///
    /// The actor lives until the host drops every proxy of it (the daemon is then told
    /// to release it). Throws the error its initializer threw, or a `JobError`.
    public func spawn<A: KapselActor>(
        _ type: A.Type, configuration: A.Configuration, on placement: ActorPlacement = .leastLoaded, restart: RestartPolicy = .never
    ) async throws -> A {
        guard case .host(let host) = actorSystem.role else { preconditionFailure("a pool's actor system is a host") }
        let id = actorSystem.mintHostID()
        let envelope = try encode(configuration)
        let creation = ActorCreation(typeName: A.actorTypeName, envelope: envelope, placement: placement, restart: restart, pooled: false)
        _ = try await host.call(id, kind: .create, target: A.actorTypeName, display: "\(A.actorTypeName).init", envelope: envelope, timeout: nil, creation: creation)
        return try proxy(of: id, as: type, host: host)
    }

    /// Creates a distributed actor that needs no configuration in a daemon.
    public func spawn<A: KapselActor>(
        _ type: A.Type, on placement: ActorPlacement = .leastLoaded, restart: RestartPolicy = .never
    ) async throws -> A where A.Configuration == NoConfiguration {
        try await spawn(type, configuration: NoConfiguration(), on: placement, restart: restart)
    }

    /// Places one instance of a stateless actor on every daemon (daemons that start later
    /// get one too) and returns a proxy whose calls go through the dispatcher to the
    /// first idle daemon, like jobs.
    ///
    /// ```swift
    /// let calculator = try await daemons.pooled(Calculator.self)
    /// async let a = calculator.fit(part1)     // on one daemon
    /// async let b = calculator.fit(part2)     // on another
    /// ```
    public func pooled<A: KapselActor>(_ type: A.Type, configuration: A.Configuration) async throws -> A {
        guard case .host(let host) = actorSystem.role else { preconditionFailure("a pool's actor system is a host") }
        let id = actorSystem.mintHostID()
        let creation = ActorCreation(typeName: A.actorTypeName, envelope: Envelope(payload: .init()), placement: .leastLoaded, restart: .recreate, pooled: true)
        dispatcher.perform { state in
            state.registerPooled(id, creation: creation)
            return []
        }
        for result in await everywhere(PooledActorCreation<A>(id: id, configuration: configuration)) {
            _ = try result.get()
        }
        return try proxy(of: id, as: type, host: host)
    }

    /// Places a stateless actor that needs no configuration on every daemon.
    public func pooled<A: KapselActor>(_ type: A.Type) async throws -> A where A.Configuration == NoConfiguration {
        try await pooled(type, configuration: NoConfiguration())
    }

    private func proxy<A: KapselActor>(of id: KapselActorID, as type: A.Type, host: HostActors) throws -> A {
        host.received(id)
        return try A.resolve(id: id, using: actorSystem)
    }
}
