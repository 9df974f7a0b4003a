import ArgumentParser
import Kapsel
import KapselPython
import KapselR
import KapselStress

/// The `kapsel` command. Its own executable is also its daemon: `Kapsel.bootstrap`
/// comes first, so a re-launched copy runs jobs instead of parsing arguments.
@main
struct KapselMain {
    static func main() async {
        Kapsel.bootstrap(jobs: DemoJobs.all + BenchJobs.all + StressJobs.all, actors: [EchoActor.self, PythonSession.self, RSession.self] + StressJobs.actors)
        await KapselCommand.main()
    }
}

struct KapselCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kapsel",
        abstract: "Run work in isolated daemon processes.",
        subcommands: [DemoCommand.self, BenchCommand.self, StressCommand.self, EchoPeerCommand.self]
    )
}
