import Kapsel
import KapselWire

/// W3: `Double` arrays of 80 MB and 1 GB, host → daemon → host (echo) and host → daemon
/// → sum, as a `SharedArray` (shared memory, no copy), a plain `[Double]` (copied once
/// into shared memory each way, and out of it on the receiving side), and forced
/// serialization (through the socket). Reports transfer time only: allocation and first
/// touch of the input (`alloc_fill_ms_*`) and the daemon's summing are measured apart.
/// Peak RSS (VmHWM, reset just before) is of the 1 GB echo.
enum LargeDataBench {
    /// How long the machine is left alone after W3 before the next workload. W3 frees
    /// gigabytes; on a virtual machine the hypervisor then takes CPU time back ("steal",
    /// seen only while the CPUs are busy) in bursts of up to a third of the CPUs for some
    /// 15 seconds. Straight after W3, W8's shared-memory variant measured 0.77–0.87 of
    /// its ideal; 20 seconds later 0.88–0.91, as when it runs alone.
    static let settlePause = Duration.seconds(20)

    static let sizes: [(label: String, count: Int)] = [("80MB", 10_000_000), ("1GB", 125_000_000)]

    enum Variant: String, CaseIterable {
        case shared, array, serialized
    }

    static func run() async throws {
        for variant in Variant.allCases {
            var options = DaemonOptions()
            options.limits = WireLimits(maxFrameLength: Int(Int32.max))
            if variant == .serialized { options.largeArrayThreshold = .max }
            try await withDaemons(1, options: options) { daemons in
                let daemonPID = daemons.status().daemons[0].pid!
                for size in sizes {
                    try await echo(variant, size, daemons, daemonPID)
                }
                try await sum(variant, daemons)
            }
        }
    }

    private static func echo(_ variant: Variant, _ size: (label: String, count: Int), _ daemons: Daemons, _ daemonPID: Int32) async throws {
        let clock = ContinuousClock()
        let fillStart = clock.now
        let input = try Input(variant, count: size.count)
        BenchReport.emit("W3", variant.rawValue, "alloc_fill_ms_\(size.label)", (clock.now - fillStart).milliseconds)

        MemoryUsage.resetPeak()
        MemoryUsage.resetPeak(processID: daemonPID)
        let start = clock.now
        let echoedCount: Int
        switch input {
        case .shared(let values): echoedCount = try await daemons.submit(EchoShared(values: values)).value.count
        case .plain(let values): echoedCount = try await daemons.submit(EchoPlain(values: values)).value.count
        }
        let elapsed = clock.now - start
        guard echoedCount == size.count else { throw BenchError("the echo returned \(echoedCount) values, not \(size.count)") }
        BenchReport.emit("W3", variant.rawValue, "echo_transfer_ms_\(size.label)", elapsed.milliseconds)
        if size.label == "1GB" {
            let host = MemoryUsage.current().peakResidentKB / 1024
            let daemon = (MemoryUsage.of(processID: daemonPID)?.peakResidentKB ?? 0) / 1024
            BenchReport.emit("W3", variant.rawValue, "peak_rss_host_MB_1GB", Double(host))
            BenchReport.emit("W3", variant.rawValue, "peak_rss_daemon_MB_1GB", Double(daemon))
            BenchReport.emit("W3", variant.rawValue, "peak_rss_total_MB_1GB", Double(host + daemon))
        }
    }

    private static func sum(_ variant: Variant, _ daemons: Daemons) async throws {
        let count = sizes[1].count
        let input = try Input(variant, count: count)
        let clock = ContinuousClock()
        let start = clock.now
        let result: TimedSum
        switch input {
        case .shared(let values): result = try await daemons.submit(SumShared(values: values)).value
        case .plain(let values): result = try await daemons.submit(SumPlain(values: values)).value
        }
        let elapsed = clock.now - start
        let expected = Double(count - 1) * Double(count) / 2
        guard result.sum == expected else { throw BenchError("sum \(result.sum), expected \(expected)") }
        BenchReport.emit("W3", variant.rawValue, "sum_transfer_ms_1GB", elapsed.milliseconds - Double(result.computeNanoseconds) / 1e6)
    }

    /// The input, filled with 0, 1, 2, ... (the fill is the first touch of its memory).
    private enum Input {
        case shared(SharedArray<Double>)
        case plain([Double])

        init(_ variant: Variant, count: Int) throws {
            switch variant {
            case .shared:
                self = .shared(try SharedArray(count: count) { values in
                    for index in values.indices { values[index] = Double(index) }
                })
            case .array, .serialized:
                self = .plain([Double](unsafeUninitializedCapacity: count) { values, initialized in
                    for index in 0..<count { values[index] = Double(index) }
                    initialized = count
                })
            }
        }
    }
}
