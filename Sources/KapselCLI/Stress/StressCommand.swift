import ArgumentParser

/// `kapsel stress ...`: the reliability runs, longer than the tests'.
struct StressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stress",
        abstract: "Prove the promise: every job resolves exactly once, whatever its daemon does.",
        subcommands: [StormCommand.self, HostCommand.self]
    )
}
