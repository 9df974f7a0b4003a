import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// What a storm did and whether the promise held: every job resolved exactly once, as
/// its fate and its runs say it must, and the pool left nothing behind.
public struct StormReport: Sendable, CustomStringConvertible {
    /// Jobs per path (`submit`, `map`, `actor`).
    public let jobsBySource: [String: Int]
    /// Jobs per fate (`value`, `segfault while running`, ...).
    public let jobsByFate: [String: Int]
    /// Outcomes: `value`, or the error code's name.
    public let outcomes: [String: Int]
    /// Jobs that never resolved (must be 0).
    public let unresolved: Int
    /// Jobs whose outcome or number of runs broke the rules, each with why (must be empty).
    public let violations: [String]
    /// Failures of jobs that were not to fail, explained by another job killing their
    /// daemon while they were on it (its pid is one a fatal job died in).
    public let collateral: Int
    /// Handles resolved again after resolving (must be 0).
    public let repeatedResolutions: Int
    /// Daemons that died and were replaced.
    public let daemonsDied: Int
    /// Pool slots free afterwards, of all.
    public let slotsFree: Int, slotCount: Int
    /// What the host held before the pool and after it stopped.
    public let before: LeftBehind, after: LeftBehind
    /// How long the storm took.
    public let elapsed: Duration
    let plan: StormPlan

    /// Whether the promise held.
    public var passed: Bool {
        unresolved == 0 && violations.isEmpty && repeatedResolutions == 0 && slotsFree == slotCount && after.childrenAdded(since: before).isEmpty
            && after.descriptors <= before.descriptors && after.sharedKB - before.sharedKB < 4 << 10
    }

    init(
        plan: StormPlan, cases: [StormCase], outcomes results: [Int: Result<StormOutput, JobError>], log: RunLog, repeatedResolutions: Int,
        slotsFree: Int, slotCount: Int, daemonsDied: Int, before: LeftBehind, after: LeftBehind, elapsed: Duration
    ) {
        self.plan = plan
        let runs = Dictionary(uniqueKeysWithValues: cases.map { ($0.id, log.runs(of: $0.id)) })
        // The processes fatal jobs died in: a failure on one of them may be collateral.
        let deadly = Set(cases.filter(\.fate.isFatal).flatMap { entry in runs[entry.id]!.prefix(entry.crashRuns) })
        var violations: [String] = []
        var collateral = 0
        var outcomes: [String: Int] = [:]
        for entry in cases {
            guard let result = results[entry.id] else { continue }
            let ran = runs[entry.id]!
            switch result {
            case .success: outcomes["value", default: 0] += 1
            case .failure(let error): outcomes[error.code.description, default: 0] += 1
            }
            let verdict = Self.judge(entry, result, runs: ran, deadly: deadly)
            if verdict == .collateral { collateral += 1 }
            if case .violation(let why) = verdict { violations.append("job \(entry.id) (\(entry.source), \(entry.fate), strikes on \(entry.crashRuns == .max ? "every run" : "run 1"), retries \(entry.retries)): \(why)") }
        }
        self.jobsBySource = Dictionary(grouping: cases, by: \.source.rawValue).mapValues(\.count)
        self.jobsByFate = Dictionary(grouping: cases, by: { "\($0.fate)" }).mapValues(\.count)
        self.outcomes = outcomes
        self.unresolved = cases.count - results.count
        self.violations = violations
        self.collateral = collateral
        self.repeatedResolutions = repeatedResolutions
        self.daemonsDied = daemonsDied
        self.slotsFree = slotsFree
        self.slotCount = slotCount
        self.before = before
        self.after = after
        self.elapsed = elapsed
    }

    enum Verdict: Equatable {
        case expected, collateral
        case violation(String)
    }

    /// Whether `result` after `runs` is what `entry`'s fate allows.
    static func judge(_ entry: StormCase, _ result: Result<StormOutput, JobError>, runs: [Int32], deadly: Set<Int32>) -> Verdict {
        // A map item of a batch that died runs again alone, each way with the map's retries.
        // A job that hangs runs once — but for runs another job cut short by killing their
        // daemon (an actor call crashing beside it), which its retries run again.
        let cutShort = runs.dropLast().filter(deadly.contains).count
        let limit = entry.fate == .hang ? 1 + min(cutShort, entry.retries) : (entry.retries + 1) * (entry.source == .map ? 2 : 1)
        if runs.count > limit { return .violation("ran \(runs.count) times, more than \(limit)") }
        let strikesEveryRun = entry.crashRuns == .max
        switch result {
        case .success(let output):
            if runs.isEmpty { return .violation("a value without a run") }
            if output.value != StormJob.expectedValue(id: entry.id, slotSum: entry.usesSlot ? Double(Storm.slotElements) : 0) {
                return .violation("value \(output.value)")
            }
            if entry.fate == .killedSendingLargeResult, output.payload.count != StormJob.largeResultBytes {
                return .violation("a large result of \(output.payload.count) bytes")
            }
            // Killed while sending, its result may have gone out whole first; no other fate is survived.
            if entry.fate.isFatal, strikesEveryRun, entry.fate != .killedSendingLargeResult { return .violation("survived its fate") }
            if entry.fate.isFatal, entry.fate != .killedSendingLargeResult, runs.count < 2 { return .violation("a value on the run its fate strikes") }
            return .expected
        case .failure(let error):
            if expected(error, for: entry.fate) { return .expected }
            let lastPID = error.daemon?.pid
            if error.code == .crashed || error.code == .connectionLost, let lastPID, deadly.contains(lastPID) { return .collateral }
            return .violation("\(error.code): \(error.message)")
        }
    }

    /// Whether `error` is how `fate` ends a job.
    static func expected(_ error: JobError, for fate: StormFate) -> Bool {
        switch fate {
        case .value: false
        case .crash(let kind, _): error.code == .crashed && error.termination == kind.expectedTermination
        case .killedFromOutside, .killedSendingLargeResult, .killedHoldingPoolSlot: error.code == .crashed && error.termination == .signaled(signal: SIGKILL)
        case .hang: error.code == .timedOut
        }
    }

    public var description: String {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        func list(_ counts: [String: Int]) -> String {
            counts.sorted { $0.value == $1.value ? $0.key < $1.key : $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        var lines = [
            "storm: \(jobsBySource.values.reduce(0, +)) jobs on \(plan.daemons) daemons in \(oneDecimal(seconds)) s (seed \(plan.seed)): \(list(jobsBySource))",
            "fates: \(list(jobsByFate))",
            "outcomes: \(list(outcomes)); unresolved \(unresolved); repeated resolutions \(repeatedResolutions); collateral \(collateral)",
            "daemons died and replaced: \(daemonsDied); pool slots free afterwards: \(slotsFree) of \(slotCount)",
            "left behind: processes \(after.childrenAdded(since: before)), descriptors \(after.descriptors - before.descriptors) \(after.descriptorsAdded(since: before)), shared memory \(after.sharedKB - before.sharedKB) kB",
            "violations: \(violations.count)",
        ]
        lines += violations.prefix(20).map { "  " + $0 }
        lines.append(passed ? "every job resolved exactly once, as its fate says" : "FAILED")
        return lines.joined(separator: "\n")
    }
}

/// `value` with one decimal.
private func oneDecimal(_ value: Double) -> String {
    let tenths = (value * 10).rounded()
    return "\(Int(tenths) / 10).\(Int(tenths) % 10)"
}
