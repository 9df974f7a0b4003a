import Distributed
import Kapsel

/// The jobs `kapsel bench` runs (besides the demo's `Segfault` and `Hang`).
enum BenchJobs {
    static let all: [any Job.Type] = [Trivial.self, EchoShared.self, SumShared.self, EchoPlain.self, SumPlain.self]
}

/// `x → x`: the smallest possible job, for latency and throughput.
struct Trivial: Job {
    var x: Int
    func run() async throws -> Int { x }
}

/// W3: returns the shared array it was given (no copy either way).
struct EchoShared: Job {
    var values: SharedArray<Double>
    func run() async throws -> SharedArray<Double> { values }
}

/// W3: sums a shared array.
struct SumShared: Job {
    var values: SharedArray<Double>
    func run() async throws -> TimedSum { values.withUnsafeBufferPointer(TimedSum.init) }
}

/// W3: returns the plain array it was given.
struct EchoPlain: Job {
    var values: [Double]
    func run() async throws -> [Double] { values }
}

/// W3: sums a plain array.
struct SumPlain: Job {
    var values: [Double]
    func run() async throws -> TimedSum { values.withUnsafeBufferPointer(TimedSum.init) }
}

/// A sum and the time the daemon spent computing it (to subtract from the round trip).
struct TimedSum: Codable, Sendable {
    var sum: Double
    var computeNanoseconds: Int64

    init(_ values: UnsafeBufferPointer<Double>) {
        let clock = ContinuousClock()
        let start = clock.now
        var total = 0.0
        for value in values { total += value }
        let elapsed = clock.now - start
        sum = total
        computeNanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }
}

/// W1 `actor` variant: a distributed actor whose call is the trivial round trip.
distributed actor EchoActor: KapselActor {
    typealias ActorSystem = KapselActorSystem

    init(actorSystem: KapselActorSystem, configuration: NoConfiguration) {
        self.actorSystem = actorSystem
    }

    distributed func echo(_ x: Int) -> Int { x }
}
