import Kapsel

/// The jobs `kapsel bench` runs (besides the demo's `Segfault` and `Hang`).
enum BenchJobs {
    static let all: [any Job.Type] = [Trivial.self]
}

/// `x → x`: the smallest possible job, for latency and throughput.
struct Trivial: Job {
    var x: Int
    func run() async throws -> Int { x }
}
