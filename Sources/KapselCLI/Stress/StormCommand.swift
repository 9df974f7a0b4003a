import ArgumentParser
import Foundation
import KapselStress

/// `kapsel stress storm`: a crash storm of any size; exits 1 if the promise broke.
struct StormCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storm",
        abstract: "Throw jobs that die every way at a pool through submit, map and actor calls, and check every outcome.",
        discussion: "A tenth of the jobs (--fatal) kill their daemon: a segfault, abort, exit(3), a stack overflow or SIGKILL, each while the job is decoded, runs or its result is written; SIGKILL from outside; a hang past its time limit; death while sending an 8 MiB result or while holding a pool slot. Each job records its runs; the storm checks that every handle resolved once, as the job's fate and its retries allow, and that the pool left no process, descriptor or shared memory behind."
    )

    @Option(help: "Jobs in all; split 60 % submit, 27 % map, 13 % actor calls.")
    var jobs = 3_000

    @Option(help: "Daemons in the pool.")
    var daemons = 3

    @Option(help: "The share of jobs whose daemon dies.")
    var fatal = 0.1

    @Option(help: "The seed of every random choice (random if not given).")
    var seed: UInt64?

    func validate() throws {
        guard jobs >= 30 else { throw ValidationError("a storm needs at least 30 jobs") }
        guard (1...64).contains(daemons) else { throw ValidationError("--daemons must be 1...64") }
        guard (0...1).contains(fatal) else { throw ValidationError("--fatal is a share: 0...1") }
    }

    func run() async throws {
        var plan = StormPlan()
        plan.daemons = daemons
        plan.submitted = jobs * 60 / 100
        plan.mapped = jobs * 27 / 100
        plan.actorCalls = jobs - plan.submitted - plan.mapped
        plan.fatalShare = fatal
        plan.seed = seed ?? UInt64.random(in: 1...UInt64.max)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kapsel-storm-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let report = try await Storm.run(plan, directory: directory)
        print(report)
        if !report.passed { throw ExitCode(1) }
    }
}
