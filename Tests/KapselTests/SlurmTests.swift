import Foundation
import Kapsel
import KapselSlurm
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs a Slurm command line and returns what it printed; records an issue when Slurm
/// is not running (`.ci/slurm-up` starts it).
func slurm(_ command: String, _ arguments: String...) -> String? {
    guard let outcome = try? runProcess("/usr/bin/\(command)", arguments: arguments, environment: ProcessInfo.processInfo.environment) else {
        Issue.record("cannot run \(command): Slurm is not installed (.ci/run installs slurm-wlm and starts it with .ci/slurm-up)")
        return nil
    }
    guard outcome.status == 0 else {
        Issue.record("\(command) \(arguments.joined(separator: " ")) failed (\(outcome.status)): \(outcome.output)")
        return nil
    }
    return outcome.output
}

/// Kapsel's jobs in the queue.
func kapselJobsInQueue() -> [String] {
    (slurm("squeue", "-h", "-o", "%i %j %T") ?? "?").split(separator: "\n").map(String.init).filter { $0.contains("kapsel-") || $0 == "?" }
}

/// A controller of test daemons as Slurm jobs in `partition`, their files in `directory`.
func slurmController(
    _ workers: ClosedRange<Int>, in directory: String, idleTime: Duration? = .seconds(30), crashesMax: Int = 0, launchTimeout: Duration = .seconds(60),
    partition: String = "debug", options: [String] = [], maxStartFailures: Int = 3
) -> ControllerOptions {
    let launch = SlurmLaunch(
        partition: partition, cpusPerTask: 1, memoryPerCPU: "100M", options: options, scriptLines: ["echo worker on $(hostname)"], scriptDirectory: directory
    )
    return testController(workers, idleTime: idleTime, crashesMax: crashesMax, launchTimeout: launchTimeout, launch: .slurm(launch)) {
        $0.maxConsecutiveStartFailures = maxStartFailures
    }
}

/// A directory for a test's Slurm files, removed after `body`.
func withSlurmDirectory(_ body: (String) async throws -> Void) async throws {
    let directory = temporaryPath("slurm")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try await body(directory)
}

extension ProcessTests {
    /// Against the one-node Slurm `.ci/slurm-up` starts: real `sbatch`, `scontrol`, `scancel`.
    @Suite("Controllers on Slurm")
    struct SlurmTests {
        @Test func aPoolOfSlurmWorkersScalesUpFromZeroRunsAMapAndGoesBackToZero() async throws {
            guard slurm("sinfo", "-h") != nil else { return }
            #expect(kapselJobsInQueue().isEmpty, "the queue starts empty")
            try await withSlurmDirectory { directory in
                try await withDaemons(controller: slurmController(0...3, in: directory, idleTime: .seconds(1))) { daemons in
                    #expect(daemons.status().daemons.allSatisfy { $0.phase == .parked })
                    let results = await daemons.map(0..<200) { MapStep(.sleep(milliseconds: 20, value: $0)) }
                    #expect(results.map { try? $0.get().value } == Array(0..<200))
                    let used = Set(results.compactMap { try? $0.get().daemonIndex })
                    #expect(used.count > 1 && used.isSubset(of: [0, 1, 2]), "\(used)")
                    #expect(await eventually(within: .seconds(30)) { daemons.status().daemons.allSatisfy { $0.phase == .parked } }, "\(daemons.status())")
                    #expect(await eventually(within: .seconds(10)) { kapselJobsInQueue().isEmpty }, "\(kapselJobsInQueue())")
                    #expect(daemons.status().crashes == 0)
                }
            }
            #expect(kapselJobsInQueue().isEmpty)
        }

        @Test func aWorkerShowsItsJobAndTheSecretIsNeitherInTheScriptNorOnACommandLine() async throws {
            guard slurm("sinfo", "-h") != nil else { return }
            try await withSlurmDirectory { directory in
                try await withDaemons(controller: slurmController(1...1, in: directory)) { daemons in
                    guard let batchJob = daemons.status().daemons[0].batchJob else { Issue.record("no batch job in \(daemons.status())"); return }
                    #expect(batchJob.hasPrefix("slurm "))
                    #expect("\(daemons.status())".contains(batchJob))
                    let job = String(batchJob.dropFirst("slurm ".count))
                    let script = slurm("scontrol", "write", "batch_script", job, "-") ?? ""
                    #expect(script.contains("#SBATCH --partition=debug") && script.contains("#SBATCH --mem-per-cpu=100M") && script.contains("echo worker on"))
                    #expect(!containsSecretLikeHex(script), "\(script)")
                    let environment = (try? String(contentsOfFile: "/var/spool/slurmctld/hash.\(Int(job)! % 10)/job.\(job)/environment", encoding: .isoLatin1)) ?? ""
                    #expect(environment.contains("KAPSEL_SECRET_FILE=") && !environment.contains("KAPSEL_SECRET="), "the job's environment carries the file's path only")
                    for commandLine in allCommandLines() { #expect(!containsSecretLikeHex(commandLine), "\(commandLine)") }
                    let jobID = try await daemons.submit(ReadEnvironment("SLURM_JOB_ID")).value
                    #expect(jobID == job)
                    let secretFile = try await daemons.submit(ReadEnvironment("KAPSEL_SECRET_FILE")).value
                    #expect(secretFile == nil, "the daemon took it")
                    let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                    #expect(!files.contains { $0.hasSuffix(".secret") }, "the daemon deleted the secret file: \(files)")
                }
            }
            #expect(await eventually(within: .seconds(10)) { kapselJobsInQueue().isEmpty }, "stopping cancels the job: \(kapselJobsInQueue())")
        }

        @Test func aWorkerCancelledWithScancelMidJobIsReplacedAndTheJobRunsAgain() async throws {
            guard slurm("sinfo", "-h") != nil else { return }
            try await withSlurmDirectory { directory in
                try await withDaemons(controller: slurmController(0...2, in: directory, crashesMax: 1)) { daemons in
                    let handle = daemons.submit(Sleep(milliseconds: 3_000, value: 42))
                    #expect(await eventually(within: .seconds(30)) { daemons.status().daemons.contains { $0.running == 1 && $0.batchJob != nil } })
                    guard let first = daemons.status().daemons.first(where: { $0.running == 1 }), let batchJob = first.batchJob else { return }
                    let job = String(batchJob.dropFirst("slurm ".count))
                    _ = slurm("scancel", job)
                    let value = try await handle.value
                    #expect(value == 42)
                    let status = daemons.status()
                    #expect(status.daemons.reduce(0) { $0 + $1.assigned } == 2, "the job ran twice: \(status)")
                    #expect(status.daemons.allSatisfy { $0.batchJob != batchJob }, "on another Slurm job")
                }
            }
            #expect(await eventually(within: .seconds(10)) { kapselJobsInQueue().isEmpty }, "\(kapselJobsInQueue())")
        }

        @Test func aLauncherThatCannotSubmitResolvesTheWaitingJobsWithSbatchsMessage() async throws {
            guard slurm("sinfo", "-h") != nil else { return }
            try await withSlurmDirectory { directory in
                try await withDaemons(controller: slurmController(0...2, in: directory, partition: "nonexistent")) { daemons in
                    let handles = (0..<3).map { daemons.submit(Echo($0)) }
                    for handle in handles {
                        let failure = await handle.result.failure
                        #expect(failure?.code == .launchFailed)
                        let message = failure?.message ?? ""
                        #expect(message.contains("Slurm (partition nonexistent)") && message.lowercased().contains("invalid partition"), "\(message)")
                    }
                }
            }
            #expect(kapselJobsInQueue().isEmpty)
        }

        @Test func aPendingLaunchIsCancelledWhenItTimesOutAndWhenThePoolStops() async throws {
            guard slurm("sinfo", "-h") != nil else { return }
            try await withSlurmDirectory { directory in
                // Held in the queue for an hour: the launch runs out of time and its job is cancelled.
                let held = slurmController(0...1, in: directory, launchTimeout: .seconds(2), options: ["--begin=now+1hour"], maxStartFailures: 1)
                try await withDaemons(controller: held) { daemons in
                    let failure = await daemons.submit(Echo(1)).result.failure
                    #expect(failure?.code == .launchFailed)
                    #expect(failure?.message.contains("did not connect within 2.0 seconds") == true, "\(failure?.message ?? "")")
                    #expect(failure?.message.contains("kapsel: slurm job") == true, "the launch's output tells its job")
                    #expect(await eventually(within: .seconds(10)) { kapselJobsInQueue().isEmpty }, "\(kapselJobsInQueue())")
                }
                // Stopping the pool while its launches wait in the queue cancels them.
                let waiting = slurmController(0...2, in: directory, options: ["--begin=now+1hour"])
                try await withDaemons(controller: waiting) { daemons in
                    let handles = (0..<2).map { daemons.submit(Echo($0)) }
                    #expect(await eventually(within: .seconds(10)) { kapselJobsInQueue().count == 2 }, "\(kapselJobsInQueue())")
                    #expect(daemons.status().launching == 2)
                    _ = handles
                }
                #expect(await eventually(within: .seconds(10)) { kapselJobsInQueue().isEmpty }, "\(kapselJobsInQueue())")
            }
        }
    }
}

/// Whether `text` holds 64 hex digits in a row, as a host secret is written.
func containsSecretLikeHex(_ text: String) -> Bool {
    text.firstMatch(of: /[0-9a-f]{64}/) != nil
}

/// The command line of every process, as `ps` shows them.
func allCommandLines() -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
        (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))).map { String(decoding: $0, as: UTF8.self).replacing("\0", with: " ") }
    }
}
