import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// W1: round trip of a trivial job with one daemon: over the local Unix socket, with
/// and without the dispatcher, as an actor call, and over TLS on loopback (`tls`,
/// with zero-configuration TLS); then each stage of the local job path timed alone
/// (`HotPathStages`), beside the raw socket's share (W0).
enum LatencyBench {
    static func run(floorMicroseconds: Double?) async throws {
        var tls = DaemonOptions()
        tls.remote.listen = "tls+tcp://127.0.0.1:0"
        var roundRobin = DaemonOptions()
        roundRobin.dispatch = .roundRobin
        for (variant, options) in [("job", DaemonOptions()), ("no-dispatcher", roundRobin), ("tls", tls)] {
            let samples = try await withDaemons(1, options: options) { daemons in
                for index in 0..<200 { _ = try await daemons.submit(Trivial(x: index)).value }
                let clock = ContinuousClock()
                var samples: [Double] = []
                for index in 0..<2000 {
                    let start = clock.now
                    _ = try await daemons.submit(Trivial(x: index)).value
                    samples.append((clock.now - start).microseconds)
                }
                return Samples(samples)
            }
            report(variant, samples, floorMicroseconds)
        }
        let actorSamples = try await withDaemons(1) { daemons in
            let actor = try await daemons.spawn(EchoActor.self)
            for index in 0..<200 { _ = try await actor.echo(index) }
            let clock = ContinuousClock()
            var samples: [Double] = []
            for index in 0..<2000 {
                let start = clock.now
                _ = try await actor.echo(index)
                samples.append((clock.now - start).microseconds)
            }
            return Samples(samples)
        }
        report("actor", actorSamples, floorMicroseconds)
        // Where a job's round trip goes: each stage of the path timed alone.
        let stages = try await HotPathStages.measure(Trivial(x: 1))
        for stage in stages { BenchReport.emit("W1", "stage", "us", stage.microseconds, note: stage.name) }
        if let floorMicroseconds {
            BenchReport.emit("W1", "stage", "us", floorMicroseconds, note: "the socket both ways: write, wake-up and read, twice (W0)")
        }
        let beyondFloor = stages.filter(\.addsToLocalPath).reduce(0) { $0 + $1.microseconds }
        BenchReport.emit("W1", "stage", "us_sum", beyondFloor + (floorMicroseconds ?? 0), note: "W0 and the stages a local job adds to it")
    }

    private static func report(_ variant: String, _ samples: Samples, _ floorMicroseconds: Double?) {
        BenchReport.emit("W1", variant, "rtt_us_p50", samples.median)
        BenchReport.emit("W1", variant, "rtt_us_p99", samples.percentile(0.99))
        if let floorMicroseconds {
            BenchReport.emit("W1", variant, "ratio_to_floor", samples.median / floorMicroseconds)
        }
    }
}

/// W2: 20,000 trivial jobs with two daemons: submitted at once, then all collected,
/// through the dispatcher (one job per daemon at a time), round-robin (pipelined) and
/// through the dispatcher over TLS on loopback; and as one `map` (which batches them).
enum ThroughputBench {
    static let jobs = 20_000

    static func run() async throws {
        var tls = DaemonOptions()
        tls.remote.listen = "tls+tcp://127.0.0.1:0"
        var roundRobin = DaemonOptions()
        roundRobin.dispatch = .roundRobin
        for (variant, options) in [("submit", DaemonOptions()), ("submit-no-dispatcher", roundRobin), ("submit-tls", tls)] {
            BenchReport.emit("W2", variant, "jobs_per_s", try await rate(options) { daemons in
                let handles = (0..<jobs).map { daemons.submit(Trivial(x: $0)) }
                for handle in handles { _ = try await handle.value }
            })
        }
        BenchReport.emit("W2", "map", "jobs_per_s", try await rate(DaemonOptions()) { daemons in
            _ = try await daemons.mapValues(0..<jobs) { Trivial(x: $0) }
        })
    }

    /// Jobs per second of `round` (which runs `jobs` jobs), median of three after a warm-up.
    private static func rate(_ options: DaemonOptions, _ round: (Daemons) async throws -> Void) async throws -> Double {
        var rates: [Double] = []
        try await withDaemons(2, options: options) { daemons in
            for index in 0..<4 {
                let clock = ContinuousClock()
                let start = clock.now
                try await round(daemons)
                let elapsed = clock.now - start
                if index > 0 { rates.append(Double(jobs) / (elapsed.microseconds / 1e6)) }
            }
        }
        return Samples(rates).median
    }
}

/// W4: crash recovery, 200 crashes in a row on one daemon.
enum CrashBench {
    static func run() async throws {
        // Process-lifetime resources (the event loop threads, the supervisor) exist
        // after a first pool; only what a pool leaves behind counts.
        try await withDaemons(1) { _ in }
        let before = ResourceCounts.now()
        let recovery = try await Recovery.measure(rounds: 200, expecting: .crashed) { daemons in
            await daemons.submit(Segfault()).result.map { _ in () }
        }
        let after = ResourceCounts.now()
        BenchReport.emit("W4", nil, "crash_to_error_ms", recovery.toError.median)
        BenchReport.emit("W4", nil, "replacement_ready_ms", recovery.toReady.median)
        BenchReport.emit("W4", nil, "leaked_processes", Double(after.children - before.children))
        BenchReport.emit("W4", nil, "leaked_fds", Double(after.descriptors - before.descriptors))
        BenchReport.emit("W4", nil, "leaked_shm_kB", Double(after.sharedMemoryKB - before.sharedMemoryKB))
    }
}

/// W5: a job that spins ignoring cancellation, with a 200 ms time-out.
enum TimeoutBench {
    static func run() async throws {
        let recovery = try await Recovery.measure(rounds: 5, expecting: .timedOut) { daemons in
            await daemons.submit(Hang(), timeout: .milliseconds(200)).result.map { _ in () }
        }
        BenchReport.emit("W5", nil, "timeout_resolution_ms", recovery.toError.median)
        BenchReport.emit("W5", nil, "daemon_back_ms", recovery.toReady.median)
    }
}

/// How long a failing job takes to resolve, and how long until a daemon runs the next job.
struct Recovery {
    var toError: Samples
    var toReady: Samples

    /// Runs `failing` `rounds` times on one daemon; each must fail with `code`.
    static func measure(
        rounds: Int, expecting code: JobError.Code, _ failing: (Daemons) async -> Result<Void, JobError>
    ) async throws -> Recovery {
        var toError: [Double] = []
        var toReady: [Double] = []
        try await withDaemons(1) { daemons in
            _ = try await daemons.submit(Trivial(x: 0)).value
            let clock = ContinuousClock()
            for _ in 0..<rounds {
                let start = clock.now
                let result = await failing(daemons)
                let resolved = clock.now
                guard case .failure(let error) = result, error.code == code else {
                    throw BenchError("expected the job to end with \(code), got \(result)")
                }
                _ = try await daemons.submit(Trivial(x: 1)).value
                toError.append((resolved - start).milliseconds)
                toReady.append((clock.now - resolved).milliseconds)
            }
        }
        return Recovery(toError: Samples(toError), toReady: Samples(toReady))
    }
}

/// W6: from nothing to the first result with two daemons.
enum StartupBench {
    static func run() async throws {
        var samples: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<10 {
            let start = clock.now
            var firstResult = start
            try await withDaemons(2) { daemons in
                _ = try await daemons.submit(Trivial(x: 1)).value
                firstResult = clock.now
            }
            samples.append((firstResult - start).milliseconds)
        }
        BenchReport.emit("W6", nil, "startup_ms", Samples(samples).median)
    }
}

/// Processes, descriptors and shared memory this process holds, to count leaks.
struct ResourceCounts {
    var children: Int
    var descriptors: Int
    var sharedMemoryKB: Int

    static func now() -> ResourceCounts {
        let devShmKB = ProcessInspection.directoryEntries("/dev/shm").reduce(0) { total, name in
            var info = stat()
            return stat("/dev/shm/" + name, &info) == 0 ? total + Int(info.st_blocks) / 2 : total
        }
        return ResourceCounts(children: ProcessInspection.children().count, descriptors: MemoryUsage.current().openDescriptors, sharedMemoryKB: devShmKB)
    }
}
