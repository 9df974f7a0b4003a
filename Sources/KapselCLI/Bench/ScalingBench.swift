import Kapsel
import KapselSlurm

#if canImport(Glibc)
import Glibc
#endif

/// W11: a pool of 0…4 workers, from zero, given 100 queued jobs of 10 ms: the time until
/// the first resolves and until all do; then, idle, the time until it is back at zero
/// workers (its idle time, 1 s, included). On this machine's launcher, and on Slurm
/// when `sinfo` answers.
enum ScalingBench {
    static let idleTime = Duration.seconds(1)
    static let rounds = 5

    static func run() async throws {
        try await measure("local", launch: .local)
        if SlurmLaunch.clusterAnswers() {
            try await measure("slurm", launch: .slurm(SlurmLaunch(cpusPerTask: 1, scriptDirectory: "/tmp/kapsel-bench-slurm")))
        } else {
            let note = "W11 slurm: skipped, sinfo does not answer (start Slurm with .ci/slurm-up)\n"
            _ = note.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        }
    }

    private static func measure(_ variant: String, launch: DaemonOptions.Launch) async throws {
        var first: [Double] = []
        var all: [Double] = []
        var toZero: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<rounds {
            try await withDaemons(controller: ControllerOptions(workers: 0...4, idleTime: idleTime, launch: launch)) { daemons in
                let start = clock.now
                let handles = (0..<100).map { _ in daemons.submit(Pause(milliseconds: 10)) }
                // The queue is first in, first out: the first job submitted resolves first.
                _ = try await handles[0].value
                let firstResolved = clock.now
                for handle in handles { _ = try await handle.value }
                let done = clock.now
                first.append((firstResolved - start).milliseconds)
                all.append((done - start).milliseconds)
                while !daemons.status().daemons.allSatisfy({ $0.phase == .parked }) { try await Task.sleep(for: .milliseconds(5)) }
                toZero.append((clock.now - done).milliseconds)
            }
        }
        let note = "\(rounds) rounds, median; 100 jobs of 10 ms, workers 0...4, idle time \(idleTime)"
        BenchReport.emit("W11", variant, "first_result_ms", Samples(first).median, extra: ["min": Samples(first).lowest, "max": Samples(first).highest], note: note)
        BenchReport.emit("W11", variant, "all_100_ms", Samples(all).median, extra: ["min": Samples(all).lowest, "max": Samples(all).highest], note: note)
        BenchReport.emit("W11", variant, "idle_to_zero_ms", Samples(toZero).median, extra: ["min": Samples(toZero).lowest, "max": Samples(toZero).highest], note: note)
    }
}
