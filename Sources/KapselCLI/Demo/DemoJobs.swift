import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// The jobs `kapsel demo` runs.
enum DemoJobs {
    static let all: [any Job.Type] = [Simulate.self, Segfault.self, Hang.self]
}

/// The mean of `n` draws from a normal distribution, and where it was computed.
struct Simulate: Job {
    var mean: Double
    var sd: Double
    var n: Int
    var seed: UInt64

    struct Output: Codable, Sendable {
        var estimate: Double
        var daemon: Int
        var instance: Int
    }

    func run() async throws -> Output {
        guard sd > 0 else { throw JobFailure("sd must be positive, got \(sd)") }
        var generator = SplitMix64(seed: seed)
        var sum = 0.0
        for _ in 0..<n {
            // Box-Muller: two uniforms in (0, 1] give one standard normal draw.
            let u1 = Double(generator.next() >> 11 + 1) / Double(1 << 53)
            let u2 = Double(generator.next() >> 11) / Double(1 << 53)
            sum += mean + sd * (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
        let context = DaemonContext.current
        return Output(estimate: sum / Double(n), daemon: context?.daemonIndex ?? -1, instance: context?.instance ?? 0)
    }
}

/// A small, fast, seedable generator (SplitMix64).
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Writes through an invalid pointer: the daemon dies with SIGSEGV.
struct Segfault: Job {
    func run() async throws -> Int {
        let address = Int(getpid() & 0) + 16
        UnsafeMutablePointer<Int>(bitPattern: address)!.pointee = 1
        return 0
    }
}

/// Spins for ever and ignores cancellation: only killing its daemon stops it.
struct Hang: Job {
    /// Written on every turn, so no optimizer can prove the loop does nothing.
    nonisolated(unsafe) static var turns = 0

    func run() async throws -> Int {
        while true { Hang.turns &+= 1 }
    }
}
