import KapselWire

#if canImport(Glibc)
import Glibc
#endif

/// Entry points of a program that uses Kapsel.
public enum Kapsel {
    /// Call this first in `main`, with every job type the program submits and every
    /// distributed actor type it spawns in daemons.
    ///
    /// ```swift
    /// @main struct App {
    ///     static func main() async throws {
    ///         Kapsel.bootstrap(jobs: [Simulate.self, Fit.self], actors: [Model.self])
    ///         try await withDaemons(4) { daemons in ... }
    ///     }
    /// }
    /// ```
    ///
    /// In the host it returns at once (keeping the types for daemons that run in the
    /// host, `DaemonOptions.Launch.inProcess`). When `Daemons` re-launches this executable
    /// as a daemon, it runs the daemon instead and never returns: the process exits when
    /// the host stops it or goes away.
    public static func bootstrap(jobs: [any Job.Type], actors: [any KapselActor.Type] = []) {
        guard DaemonConfiguration.isDaemonProcess else {
            bootstrapped.withLock { $0 = BootstrappedTypes(jobs: jobs, actors: actors) }
            return
        }
        let configuration: DaemonConfiguration
        do {
            configuration = try DaemonConfiguration.takeFromEnvironment()
        } catch {
            DaemonProcess.exit(.configuration, "kapsel daemon: \(error)")
        }
        runDaemon(configuration, jobs: jobs, actors: actors)
    }

    /// Runs this process as a daemon of the host `configuration` names, running `jobs`
    /// and hosting `actors`. Never returns.
    public static func runDaemon(_ configuration: DaemonConfiguration, jobs: [any Job.Type], actors: [any KapselActor.Type] = []) -> Never {
        DaemonProcess.run(configuration, registry: DaemonRegistry(jobs: jobs, actors: actors))
    }

    /// A process launched as a daemon whose `main` never called `bootstrap` would run
    /// the host's code again and launch daemons of its own, without end. Stop it here.
    static func refuseToNestInUnbootstrappedDaemon() {
        if DaemonConfiguration.isDaemonProcess {
            DaemonProcess.exit(.configuration, "kapsel: this process was launched as a daemon, but its main never called Kapsel.bootstrap(jobs:); call it first thing in main")
        }
    }
}
