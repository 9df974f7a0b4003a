import Foundation
import Kapsel
import KapselR

#if canImport(Glibc)
import Glibc
#endif

/// W10: R embedded in a daemon (the machine's R): a call's round trip; 1 GiB
/// `SharedTensor` given to R (no copy: R reads the shared memory through a private view)
/// and summed; 1 GiB made by R received in Swift (one copy, into shared memory); peak
/// memory; and for comparison `Rscript -e 1` start-up and an rpy2 call (R embedded in
/// Python, in-process), where Debian's python3 with rpy2 is installed.
enum RBench {
    static let count = 134_217_728   // 1 GiB of Double

    static func run() async throws {
        let runtime = try RRuntime()
        var options = DaemonOptions()
        options.limits = .init(maxFrameLength: 1 << 30)
        try await withDaemons(1, options: options) { daemons in
            let r = try await daemons.rSession(RSession.Configuration(runtime: runtime))
            for _ in 0..<200 { _ = try await r.eval("1") }
            let clock = ContinuousClock()
            var samples: [Double] = []
            for _ in 0..<2000 {
                let start = clock.now
                _ = try await r.eval("1")
                samples.append((clock.now - start).microseconds)
            }
            BenchReport.emit("W10", nil, "call_rtt_us_p50", Samples(samples).median)
            let daemon = daemons.status().daemons[0].pid!

            // R's first vector over shared memory is the slowest (its first private mapping).
            _ = try await r.call("length", try SharedTensor(try SharedArray<Double>(repeating: 1, count: 1000), shape: [1000], layout: .columnMajor))
            try await sumInR(r, daemon: daemon, clock: clock)
            // What R held is collected before R makes a gibibyte of its own.
            try await r.collectGarbage()

            _ = MemoryUsage.resetPeak()
            _ = MemoryUsage.resetPeak(processID: daemon)
            let start = clock.now
            let made = try await r.eval("rep(1, \(count))").tensor()
            BenchReport.emit("W10", nil, "r_to_swift_ms_1GB", (clock.now - start).milliseconds, note: "R allocates and fills (first touch of 1 GiB), then one copy into shared memory")
            guard made.elementCount == count else { throw RError("BenchError", "\(made.elementCount) elements came back") }
            BenchReport.emit("W10", nil, "copies_1GB", 1)
            emitPeaks(daemon: daemon, note: "1 GiB made by R received in Swift: R's vector and its copy", metric: "peak_rss_total_MB_1GB_out")
        }
        BenchReport.emit("W10", nil, "rscript_startup_ms", try rscriptStartup(runtime), note: "median of 5 runs of Rscript -e 1")
        if let rpy2 = rpy2Call() {
            BenchReport.emit("W10", nil, "rpy2_call_us_p50", rpy2, note: "R embedded in Python (rpy2), robjects.r('1'), in-process")
        }
    }

    /// A gibibyte in shared memory given to R, which takes its length (the transfer) and sums it.
    private static func sumInR(_ r: RSession, daemon: Int32, clock: ContinuousClock) async throws {
        let input = try SharedTensor(try SharedArray<Double>(repeating: 1, count: count), shape: [count], layout: .columnMajor)
        _ = MemoryUsage.resetPeak()
        _ = MemoryUsage.resetPeak(processID: daemon)
        var start = clock.now
        let length = try await r.call("length", input)
        BenchReport.emit("W10", nil, "swift_to_r_transfer_ms_1GB", (clock.now - start).milliseconds, note: "no copy: R gets a vector over the shared memory")
        start = clock.now
        let sum = try await r.call("sum", input)
        BenchReport.emit("W10", nil, "swift_to_r_sum_ms_1GB", (clock.now - start).milliseconds, note: "R sums 1 GiB where it lies")
        guard length.double == Double(count), sum.double == Double(count) else { throw RError("BenchError", "R saw \(length.value) elements summing to \(sum.value)") }
        emitPeaks(daemon: daemon, note: "1 GiB given to R and summed")
    }

    /// The peak resident memory of host and daemon since the last reset; pages both map
    /// (the shared memory) are counted once.
    private static func emitPeaks(daemon: Int32, note: String, metric: String = "peak_rss_total_MB_1GB") {
        let host = MemoryUsage.current()
        let daemonUsage = MemoryUsage.of(processID: daemon)
        let hostMB = Double(host.peakResidentKB) / 1024
        let daemonMB = Double(daemonUsage?.peakResidentKB ?? 0) / 1024
        let sharedMB = Double(min(host.residentSharedKB, daemonUsage?.residentSharedKB ?? 0)) / 1024
        BenchReport.emit("W10", nil, metric, hostMB + daemonMB - sharedMB, extra: ["host_MB": hostMB, "daemon_MB": daemonMB, "shared_counted_once_MB": sharedMB], note: note)
    }

    private static func rscriptStartup(_ runtime: RRuntime) throws -> Double {
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<5 {
            let start = clock.now
            let process = Process()
            process.executableURL = URL(fileURLWithPath: runtime.home + "/bin/Rscript")
            process.arguments = ["-e", "1"]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            samples.append((clock.now - start).milliseconds)
        }
        return Samples(samples).median
    }

    /// The median of 2,000 rpy2 calls, if Debian's python3 has rpy2.
    private static func rpy2Call() -> Double? {
        let script = """
            import time
            import rpy2.robjects as ro
            for _ in range(200): ro.r('1')
            samples = []
            for _ in range(2000):
                start = time.perf_counter(); ro.r('1'); samples.append(time.perf_counter() - start)
            samples.sort(); print(samples[1000] * 1e6)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return Double(output.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
