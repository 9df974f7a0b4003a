import Kapsel
import KapselSequences

/// W7: 1,000,000 trivial items through `mapStream` with two daemons, consumed as they
/// come; host peak RSS (VmHWM, reset just before) at 100,000 and at 1,000,000 items
/// shows whether memory grows with the item count.
enum MapScaleBench {
    static func run() async throws {
        try await withDaemons(2) { daemons in
            for items in [100_000, 1_000_000] {
                _ = MemoryUsage.resetPeak()
                let clock = ContinuousClock()
                let start = clock.now
                var received = 0
                for await (_, result) in daemons.mapStream(0..<items, { Trivial(x: $0) }) {
                    _ = try result.get()
                    received += 1
                }
                let elapsed = clock.now - start
                precondition(received == items, "the map delivered \(received) of \(items) items")
                let peakMB = Double(MemoryUsage.current().peakResidentKB) / 1024
                if items == 1_000_000 {
                    BenchReport.emit("W7", nil, "items_per_s", Double(items) / (elapsed.microseconds / 1e6))
                    BenchReport.emit("W7", nil, "host_peak_rss_MB", peakMB)
                } else {
                    BenchReport.emit("W7", nil, "host_peak_rss_MB_100k", peakMB)
                }
            }
        }
    }
}

/// W8: prefetching 2,000 items of 100,000 `Double`s, each about 1 ms of work, two
/// workers, the consumer reading every item in order: computed on threads, in daemons
/// (the array serialized back), and in daemons writing into shared-memory pool slots.
/// The ideal is items × work ÷ workers, so 2,000 items/s. Each variant runs `passes`
/// times; the figure is the median pass, with the slowest and fastest on the same line
/// (one pass lasts about a second, so a single burst of the VM's noise moves it).
enum PrefetchBench {
    static let items = 2_000
    static let workers = 2
    static let buffer = 16
    static let passes = 5
    static let ideal = Double(workers) / FrameWork.duration.seconds

    static func run() async throws {
        report("threads", try await measure {
            LazyIndexed(count: items) { $0 }.prefetch(workers: workers, buffer: buffer) { index in
                var frame = [Double](repeating: 0, count: FrameWork.count)
                frame.withUnsafeMutableBufferPointer { FrameWork.fill($0, index: index) }
                return frame
            }
        })
        try await withDaemons(workers) { daemons in
            report("daemons", try await measure {
                LazyIndexed(count: items) { MakeFrame(index: $0) }.prefetch(on: daemons, buffer: buffer)
            })
            let slots = buffer + workers + 2
            report("daemons-shm", try await measure {
                LazyIndexed(count: items) { MakeSharedFrame(index: $0, slots: slots) }.prefetch(on: daemons, buffer: buffer)
            })
        }
    }

    /// Items per second of each pass.
    private static func measure<Frame: RandomAccessCollection<Double>>(_ make: () -> Prefetched<Frame>) async throws -> Samples {
        var rates: [Double] = []
        for _ in 0..<passes { rates.append(try await consume(make)) }
        return Samples(rates)
    }

    /// Items per second for making the sequence (which starts prefetching) and reading
    /// every item in order, checking each one.
    private static func consume<Frame: RandomAccessCollection<Double>>(_ make: () -> Prefetched<Frame>) async throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        var index = 0
        for try await frame in make() {
            precondition(frame.count == FrameWork.count && frame.last == Double(index), "item \(index) is wrong")
            index += 1
        }
        return Double(index) / ((clock.now - start).microseconds / 1e6)
    }

    /// Each figure as items/s and as a fraction of the ideal: the median pass, with the
    /// number of passes and the slowest and fastest.
    private static func report(_ variant: String, _ rates: Samples) {
        for (metric, scale) in [("items_per_s", 1.0), ("fraction_of_ideal", 1 / ideal)] {
            BenchReport.emit("W8", variant, metric, rates.median * scale,
                             extra: ["passes": Double(rates.count), "min": rates.lowest * scale, "max": rates.highest * scale])
        }
    }
}

extension Duration {
    /// This duration in seconds.
    var seconds: Double { microseconds / 1e6 }
}
