import Kapsel
import KapselPython

#if canImport(Glibc)
import Glibc
#endif

/// W9: Python embedded in a daemon (the interpreter `python3` on `PATH`): a call's round
/// trip; 1 GiB of float64 made by numpy received in Swift (one copy, into shared
/// memory); 1 GiB `SharedArray` summed by numpy where it lies (no copy).
enum PythonBench {
    static func run() async throws {
        let runtime = try PythonRuntime(executable: try findPython())
        var options = DaemonOptions()
        options.limits = .init(maxFrameLength: 1 << 30)
        try await withDaemons(1, options: options) { daemons in
            let python = try await daemons.spawn(PythonSession.self, configuration: .init(runtime: runtime))
            try await python.importModule("numpy")
            // An actor call on the same daemon, timed in turn with the Python call: the
            // share of the round trip Python itself adds, whatever the machine does meanwhile.
            let echo = try await daemons.spawn(EchoActor.self, on: .daemon(0))
            for index in 0..<200 {
                _ = try await python.eval("1")
                _ = try await echo.echo(index)
            }
            let clock = ContinuousClock()
            var samples: [Double] = []
            var actorSamples: [Double] = []
            for index in 0..<2000 {
                var start = clock.now
                _ = try await python.eval("1")
                samples.append((clock.now - start).microseconds)
                start = clock.now
                _ = try await echo.echo(index)
                actorSamples.append((clock.now - start).microseconds)
            }
            let call = Samples(samples).median, actorCall = Samples(actorSamples).median
            BenchReport.emit("W9", nil, "call_rtt_us_p50", call)
            BenchReport.emit("W9", "actor", "rtt_us_p50", actorCall, note: "an actor call on the same daemon, in turn with the Python call")
            BenchReport.emit("W9", nil, "ratio_to_actor_call", call / actorCall)
            let count = 134_217_728   // 1 GiB of Double
            var start = clock.now
            let made = try await python.eval("numpy.ones(\(count))")
            let received = clock.now - start
            guard let array = made.array, array.shape == [count] else { throw PythonError(type: "BenchError", message: "no array came back") }
            BenchReport.emit("W9", nil, "numpy_to_swift_ms_1GB", received.milliseconds, note: "numpy allocates and fills, then one copy into shared memory")
            BenchReport.emit("W9", nil, "copies_1GB", 1)

            let input = try SharedArray<Double>(repeating: 1, count: count)
            start = clock.now
            let sum = try await python.call("numpy.sum", .array(PythonArray(input)))
            let summed = clock.now - start
            guard sum.double == Double(count) else { throw PythonError(type: "BenchError", message: "numpy summed \(sum)") }
            BenchReport.emit("W9", nil, "swift_to_numpy_sum_ms_1GB", summed.milliseconds, note: "no copy: numpy views the shared memory")
        }
    }

    private static func findPython() throws -> String {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where access("\(directory)/python3", X_OK) == 0 {
            return "\(directory)/python3"
        }
        throw PythonError(type: "RuntimeNotFound", message: "no python3 on PATH")
    }
}
