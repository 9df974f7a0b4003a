/// What a storm job does to its daemon: nothing, or one of the ways a worker dies.
public enum StormFate: Codable, Sendable, Hashable, CustomStringConvertible {
    /// It returns its value.
    case value
    /// Its daemon crashes in `phase`: a segfault, `abort`, `exit(3)`, a stack overflow, or
    /// a SIGKILL it sends itself.
    case crash(CrashKind, CrashPhase)
    /// Its daemon is killed with SIGKILL from outside (by the storm) while the job runs.
    case killedFromOutside
    /// It spins past its time limit, ignoring cancellation: its daemon is killed after the grace.
    case hang
    /// Its daemon is killed while it writes a large result (8 MiB, in shared memory).
    case killedSendingLargeResult
    /// Its daemon is killed while it holds a pool slot the host lent it.
    case killedHoldingPoolSlot

    /// Every way to die, each crash kind in each phase.
    public static let fatal: [StormFate] =
        CrashKind.allCases.flatMap { kind in CrashPhase.allCases.map { StormFate.crash(kind, $0) } }
        + [.killedFromOutside, .hang, .killedSendingLargeResult, .killedHoldingPoolSlot]

    /// Whether its daemon dies.
    public var isFatal: Bool { self != .value }

    public var description: String {
        switch self {
        case .value: "value"
        case .crash(let kind, let phase): "\(kind) while \(phase)"
        case .killedFromOutside: "SIGKILL from outside while running"
        case .hang: "hang past its time limit"
        case .killedSendingLargeResult: "killed sending a large result"
        case .killedHoldingPoolSlot: "killed holding a pool slot"
        }
    }
}

/// A random number generator with a seed (SplitMix64), so a storm can be replayed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator starting from `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
