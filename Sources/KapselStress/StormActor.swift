import Distributed
import Kapsel

/// The actor a storm calls: each call runs a storm job in the actor's daemon — decoding
/// the call's argument is the job's decoding phase, encoding its answer the job's
/// encoding phase.
public distributed actor StormActor: KapselActor {
    public typealias ActorSystem = KapselActorSystem

    /// An actor in a daemon's actor system.
    public init(actorSystem: KapselActorSystem, configuration: NoConfiguration) {
        self.actorSystem = actorSystem
    }

    /// Runs `job` here.
    public distributed func perform(_ job: StormJob) async throws -> StormOutput {
        try await job.run()
    }
}
