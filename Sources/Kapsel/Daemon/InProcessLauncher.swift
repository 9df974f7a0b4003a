import KapselWire
import NIOCore
import NIOPosix
import Synchronization

/// Starts a pool's daemons inside the host (`DaemonOptions.Launch.inProcess`): each is
/// the daemon side of a connection — the same session, job runner and actor host a daemon
/// process runs — connected to the pool over its private socket, so jobs, `everywhere`,
/// `map`, prefetch and actors behave as they do in daemons, errors included.
///
/// It runs the job types and actors given to `Kapsel.bootstrap(jobs:actors:)`. Nothing is
/// isolated: a crash in a job is the host's crash, and a job that ignores cancellation
/// keeps running in the host after its time limit (its daemon is dropped and replaced).
/// The daemons share the process's `DaemonStorage`.
struct InProcessLauncher: SlotLauncher {
    let url: HostAddress
    let secret: HostSecret
    let limits: WireLimits
    let inlineLimit: Int
    let lifetime: DaemonLifetime
    let busyPoll: Duration
    let types: Kapsel.BootstrappedTypes

    func launch(slot: Int, instance: Int, token: String, dispatcher: Dispatcher) {
        let configuration = DaemonConfiguration(
            url: url.description, secret: secret, token: token, limits: limits, inlineLimit: inlineLimit, lifetime: lifetime, busyPoll: busyPoll,
            batchJob: nil
        )
        // A registry per daemon: each keeps its own actors, as a daemon process does.
        let registry = DaemonRegistry(jobs: types.jobs, actors: types.actors)
        do {
            // Where a daemon process would exit, this one's connection just ends.
            try LocalHostConnection.connect(
                path: url.host, configuration: configuration, registry: registry, descriptors: nil,
                timerLoop: MultiThreadedEventLoopGroup.singleton.next(), onExit: { _, _ in }, onHostLost: { _ in }
            )
        } catch {
            dispatcher.perform { $0.launchFailed(slot: slot, instance: instance, reason: "an in-process daemon cannot connect to \(url): \(error)") }
        }
    }
}

extension Kapsel {
    /// The job and actor types `bootstrap` was given, for daemons that run in the host.
    struct BootstrappedTypes: Sendable {
        let jobs: [any Job.Type]
        let actors: [any KapselActor.Type]
    }

    /// What the host's `bootstrap` was given (nil before it is called).
    static let bootstrapped = Mutex<BootstrappedTypes?>(nil)
}
