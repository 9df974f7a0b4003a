import ArgumentParser
import Kapsel

/// `kapsel bench [W0 W1 ...]`: the workloads of BENCHMARKS.md, as JSON lines.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run the benchmark workloads and print one JSON line per figure.",
        discussion: "Build in release mode: swift run -c release kapsel bench. W0 (the raw-socket floor) always runs first; latencies are also given as a ratio to it. After W3, which frees gigabytes, the bench pauses 20 s before the next workload (see LargeDataBench.settlePause)."
    )

    @Argument(help: "Workloads to run (W0 W1 W2 W3 W4 W5 W6 W7 W8 W9 W10 W11 W12); all when none is given.")
    var workloads: [String] = []

    @Flag(help: "Skip W0 (for profiling one workload; W1's ratio to the floor is then not printed).")
    var noFloor = false

    static let available = ["W0", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10", "W11", "W12"]

    func validate() throws {
        for workload in workloads where !Self.available.contains(workload.uppercased()) {
            throw ValidationError("unknown workload \(workload); choose from \(Self.available.joined(separator: " "))")
        }
    }

    func run() async throws {
        let selected = workloads.isEmpty ? Set(Self.available) : Set(workloads.map { $0.uppercased() })
        let floor = noFloor ? nil : try FloorBench.run()
        if selected.contains("W1") { try await LatencyBench.run(floorMicroseconds: floor?.unixMedian) }
        if selected.contains("W2") { try await ThroughputBench.run() }
        if selected.contains("W3") {
            try await LargeDataBench.run()
            let later = Self.available.drop { $0 != "W3" }.dropFirst()
            if later.contains(where: selected.contains) { try await Task.sleep(for: LargeDataBench.settlePause) }
        }
        if selected.contains("W4") { try await CrashBench.run() }
        if selected.contains("W5") { try await TimeoutBench.run() }
        if selected.contains("W6") { try await StartupBench.run() }
        if selected.contains("W7") { try await MapScaleBench.run() }
        if selected.contains("W8") { try await PrefetchBench.run() }
        if selected.contains("W9") { try await PythonBench.run() }
        if selected.contains("W10") { try await RBench.run() }
        if selected.contains("W11") { try await ScalingBench.run() }
        if selected.contains("W12") { try HostDeathBench.run() }
    }
}
