import Distributed

/// How a daemon creates an actor of one registered type from the configuration the
/// host sent.
struct ActorFactory: Sendable {
    let typeName: String
    let make: @Sendable (KapselActorSystem, Envelope) async throws -> any DistributedActor
}

extension KapselActor {
    static var factory: ActorFactory {
        ActorFactory(typeName: actorTypeName) { system, envelope in
            let configuration = try envelope.decode(Configuration.self, actorSystem: system)
            return try await Self(actorSystem: system, configuration: configuration)
        }
    }
}

/// The job that places a pooled actor in a daemon (through `everywhere`, so daemons
/// that start later get it too). Registered for every actor type a daemon knows.
struct PooledActorCreation<Actor: KapselActor>: Job {
    var id: KapselActorID
    var configuration: Actor.Configuration

    static var jobTypeName: String { "kapsel.pooled:" + Actor.actorTypeName }

    func run() async throws -> Bool {
        guard let system = DaemonContext.current?.actorSystem, case .daemon(let daemon) = system.role else {
            throw JobFailure("pooled actors are created only in daemons")
        }
        let configuration = configuration
        let actor = try await system.create(id) {
            try await Actor(actorSystem: system, configuration: configuration)
        }
        daemon.export(actor, permanently: true)
        return true
    }
}

extension KapselActor {
    /// The job type that creates a pooled instance of this actor.
    static var pooledCreationJob: any Job.Type { PooledActorCreation<Self>.self }
}
