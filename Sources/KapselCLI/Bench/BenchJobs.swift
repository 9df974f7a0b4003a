import Distributed
import Kapsel

/// The jobs `kapsel bench` runs (besides the demo's `Segfault` and `Hang`).
enum BenchJobs {
    static let all: [any Job.Type] = [
        Trivial.self, EchoShared.self, SumShared.self, EchoPlain.self, SumPlain.self, MakeFrame.self, MakeSharedFrame.self, Pause.self,
    ]
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

/// W8's item: 100,000 `Double`s, the last equal to the item's index, made in about 1 ms
/// of computing (the rest of the millisecond spent on the CPU, as real work would).
enum FrameWork {
    static let count = 100_000
    static let duration = Duration.milliseconds(1)

    static func fill(_ frame: UnsafeMutableBufferPointer<Double>, index: Int) {
        let clock = ContinuousClock()
        let deadline = clock.now + duration
        for position in frame.indices { frame[position] = Double(position % 1000) }
        frame[frame.count - 1] = Double(index)
        while clock.now < deadline {}
    }
}

/// W8 `daemons`: an item as a plain array (serialized back to the host).
struct MakeFrame: Job {
    var index: Int
    func run() async throws -> [Double] {
        var frame = [Double](repeating: 0, count: FrameWork.count)
        frame.withUnsafeMutableBufferPointer { FrameWork.fill($0, index: index) }
        return frame
    }
}

/// W8 `daemons-shm`: an item written into a slot of the daemon's pool, which goes back
/// to the pool when the host's last view of it is gone.
struct MakeSharedFrame: Job {
    var index: Int
    var slots: Int
    func run() async throws -> SharedArray<Double> {
        let pool = try DaemonStorage.shared.value("W8 frames") {
            try SlotPool(slotByteCount: FrameWork.count * MemoryLayout<Double>.stride, slotCount: slots)
        }
        var frame = try await pool.acquireArray(of: Double.self, count: FrameWork.count)
        frame.withUnsafeMutableBufferPointer { FrameWork.fill($0, index: index) }
        return frame
    }
}

/// W11: waits `milliseconds`, then returns: work that keeps several workers busy.
struct Pause: Job {
    var milliseconds: Int
    func run() async throws -> Int {
        try await Task.sleep(for: .milliseconds(milliseconds))
        return milliseconds
    }
}
