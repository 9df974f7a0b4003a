import ArgumentParser
import KapselStress

/// `kapsel stress host`: a host that keeps local and TCP daemons working until it is
/// killed (what W12 kills).
struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Keep local daemons and daemons over TCP working until killed.",
        discussion: "Prints '<kind> <pid>' for each daemon, then 'ready'. Kill it with SIGKILL and watch the daemons go: local ones notice at once, remote ones when their connection ends or their heartbeat times out."
    )

    @Option(help: "Local daemons.")
    var local = 2

    @Option(help: "Daemons over TCP on loopback.")
    var tcp = 1

    func run() async throws {
        var settings = HostUnderFire.Settings()
        settings.local = local
        settings.tcp = tcp
        try await HostUnderFire.run(settings)
    }
}
