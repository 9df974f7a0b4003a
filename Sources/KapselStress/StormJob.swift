import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// One job of a storm: it records each run in the storm's `RunLog`, then meets its fate
/// on its first `crashRuns` runs and returns its value on later ones.
public struct StormJob: Job {
    /// The job's number in the storm.
    public var id: Int
    /// What it does to its daemon.
    public var fate: StormFate
    /// On how many runs the fate strikes (`Int.max`: every run).
    public var crashRuns: Int
    /// Where it records its runs.
    public var log: RunLog
    /// A pool slot the host lent it, summed into the value.
    public var slot: SharedArray<Double>?
    /// Which run this is (known in the daemon, once decoded).
    private var run = 0

    /// A storm job.
    public init(id: Int, fate: StormFate, crashRuns: Int, log: RunLog, slot: SharedArray<Double>? = nil) {
        self.id = id
        self.fate = fate
        self.crashRuns = crashRuns
        self.log = log
        self.slot = slot
    }

    /// The value a run that survives returns: one of the job's own and what its slot holds.
    public static func expectedValue(id: Int, slotSum: Double) -> Int {
        id &* 3 &+ 1 &+ Int(slotSum)
    }

    /// The size of the result a `.killedSendingLargeResult` job returns.
    public static let largeResultBytes = 8 << 20

    enum CodingKeys: String, CodingKey { case id, fate, crashRuns, log, slot }

    /// Decodes the job — in a daemon, which is a run: it is recorded, and a crash in the
    /// decoding phase strikes here.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(Int.self, forKey: .id)
        fate = try container.decode(StormFate.self, forKey: .fate)
        crashRuns = try container.decode(Int.self, forKey: .crashRuns)
        log = try container.decode(RunLog.self, forKey: .log)
        slot = try container.decodeIfPresent(SharedArray<Double>.self, forKey: .slot)
        // Only a daemon decodes a job; the host only encodes it.
        run = log.recordRun(of: id)
        if strikes, case .crash(let kind, .decodingJob) = fate { kind.perform() }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(fate, forKey: .fate)
        try container.encode(crashRuns, forKey: .crashRuns)
        try container.encode(log, forKey: .log)
        try container.encodeIfPresent(slot, forKey: .slot)
    }

    /// Whether the fate strikes on this run.
    private var strikes: Bool { run <= crashRuns }

    public func run() async throws -> StormOutput {
        let sum = slot?.withUnsafeBufferPointer { $0.reduce(0, +) } ?? 0
        var output = StormOutput(value: Self.expectedValue(id: id, slotSum: sum))
        guard strikes else {
            if fate == .killedSendingLargeResult { output.payload = [UInt8](repeating: 7, count: Self.largeResultBytes) }
            return output
        }
        switch fate {
        case .value, .crash(_, .decodingJob):
            break
        case .crash(let kind, .running):
            kind.perform()
        case .crash(let kind, .encodingResult):
            output.crashWhileEncoding = kind
        case .killedFromOutside:
            log.requestKill(for: id)
            try await Task.sleep(for: .seconds(20))
            // The host's killer polls every few milliseconds; a host starved for that long
            // (a long storm on an overloaded machine) still gets the death it was promised.
            _ = kill(getpid(), SIGKILL)
        case .hang:
            while true { StormOutput.spins &+= 1 }
        case .killedSendingLargeResult:
            output.payload = [UInt8](repeating: 7, count: Self.largeResultBytes)
            killSoon(withinMicroseconds: 2_000)
        case .killedHoldingPoolSlot:
            // Still holding `slot` (this job keeps it alive).
            withExtendedLifetime(slot) { _ = kill(getpid(), SIGKILL) }
            try await Task.sleep(for: .seconds(30))
        }
        return output
    }
}

/// What a storm job returns.
public struct StormOutput: Codable, Sendable {
    /// `StormJob.expectedValue` of the job.
    public var value: Int
    /// Large for a `.killedSendingLargeResult` job (it travels in shared memory), empty otherwise.
    public var payload: [UInt8] = []
    /// A crash to meet while this output is encoded (not encoded itself).
    var crashWhileEncoding: CrashKind?
    /// Written by a hanging job on every turn, so no optimizer can prove its loop does nothing.
    nonisolated(unsafe) static var spins = 0

    init(value: Int) {
        self.value = value
    }

    enum CodingKeys: String, CodingKey { case value, payload }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        value = try container.decode(Int.self, forKey: .value)
        payload = try container.decode([UInt8].self, forKey: .payload)
    }

    public func encode(to encoder: any Encoder) throws {
        if let crashWhileEncoding { crashWhileEncoding.perform() }
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(value, forKey: .value)
        try container.encode(payload, forKey: .payload)
    }
}

/// Kills this process with SIGKILL from another thread after a random delay of up to
/// `limit` µs — while the current job's result is being written.
private func killSoon(withinMicroseconds limit: UInt32) {
    var thread = pthread_t()
    let delay = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    delay.pointee = UInt32.random(in: 0...limit)
    pthread_create(&thread, nil, { argument in
        let pointer = argument!.assumingMemoryBound(to: UInt32.self)
        let microseconds = pointer.pointee
        pointer.deallocate()
        usleep(microseconds)
        kill(getpid(), SIGKILL)
        return nil
    }, delay)
    pthread_detach(thread)
}
