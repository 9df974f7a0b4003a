/// What a daemon can run: job types by name (each with the job that runs a batch of them
/// for `map`), actor types by name (with the job that places a pooled instance of each),
/// and the actors it keeps for the host.
final class DaemonRegistry: Sendable {
    let jobs: JobRegistry
    let factories: [String: ActorFactory]
    let actors = DaemonActors()

    init(jobs: [any Job.Type], actors: [any KapselActor.Type]) {
        self.jobs = JobRegistry(jobs + jobs.map { $0.batchJobType } + actors.map { $0.pooledCreationJob })
        var factories: [String: ActorFactory] = [:]
        for type in actors {
            let factory = type.factory
            precondition(factories[factory.typeName] == nil, "kapsel: two actor types share the name '\(factory.typeName)'")
            factories[factory.typeName] = factory
        }
        self.factories = factories
    }
}
