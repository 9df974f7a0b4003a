import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// What a storm throws at a pool: how many jobs through each path, how many of them die
/// and how, all drawn from `seed` so a storm can be replayed.
public struct StormPlan: Sendable {
    /// Daemons in the pool.
    public var daemons = 3
    /// Jobs submitted one by one (`Daemons.submit`), at most `window` at a time.
    public var submitted = 1_800
    /// Items run through `map`, in maps of `mapSize`.
    public var mapped = 800
    /// Items per `map`.
    public var mapSize = 200
    /// Calls to distributed actors (one actor per daemon, each called in turn).
    public var actorCalls = 400
    /// The share of jobs whose daemon dies.
    public var fatalShare = 0.1
    /// Retries are drawn from `0...maxRetries` (actor calls are never retried).
    public var maxRetries = 2
    /// The time limit of a job that hangs.
    public var hangTimeLimit = Duration.milliseconds(300)
    /// Submitted jobs in flight at once.
    public var window = 64
    /// The seed of every random choice.
    public var seed: UInt64 = 1
    /// The pool's options (its executable must know `StormJob` and `StormActor`).
    public var options = DaemonOptions()

    /// The default plan: 3,000 jobs on 3 daemons, a tenth of them fatal.
    public init() {}

    /// Every job of the storm, drawn from `seed`.
    func cases() -> [StormCase] {
        var random = SeededGenerator(seed: seed)
        let total = submitted + mapped + actorCalls
        var cases: [StormCase] = []
        cases.reserveCapacity(total)
        var mapRetries = 0
        for id in 0..<total {
            let source: StormCase.Source = id < submitted ? .submit : id < submitted + mapped ? .map : .actor
            let fatal = Double.random(in: 0..<1, using: &random) < fatalShare
            let fate = fatal ? source.fates.randomElement(using: &random)! : .value
            let crashRuns = Bool.random(using: &random) ? 1 : Int.max
            var retries = Int.random(in: 0...maxRetries, using: &random)
            if source == .map {
                // A map's items share its retries.
                if (id - submitted) % mapSize == 0 { mapRetries = retries }
                retries = mapRetries
            }
            if source == .actor { retries = 0 }
            let usesSlot = fate == .killedHoldingPoolSlot || (source != .map && !fatal && Double.random(in: 0..<1, using: &random) < 0.1)
            cases.append(StormCase(id: id, source: source, fate: fate, crashRuns: crashRuns, retries: retries, usesSlot: usesSlot))
        }
        return cases
    }
}

/// One job of a storm, as planned.
struct StormCase: Sendable {
    enum Source: String, Sendable, CaseIterable {
        case submit, map, actor

        /// The fates a job on this path may meet: a `map` item never hangs (a time limit
        /// would run its map one item per job) nor holds a slot; an actor call never hangs
        /// (a call past its limit is cancelled, its daemon not killed).
        var fates: [StormFate] {
            switch self {
            case .submit: StormFate.fatal
            case .map: StormFate.fatal.filter { $0 != .hang && $0 != .killedHoldingPoolSlot }
            case .actor: StormFate.fatal.filter { $0 != .hang }
            }
        }
    }

    let id: Int
    let source: Source
    let fate: StormFate
    let crashRuns: Int
    let retries: Int
    let usesSlot: Bool
}

/// Runs a storm: starts a pool, throws the plan's jobs at it through `submit`, `map` and
/// actor calls at once while killing from outside the daemons that ask for it, checks
/// every outcome against the job's fate and runs, and what the pool left behind.
public enum Storm {
    /// Slots of the pool whose slots storm jobs hold.
    static let slotCount = 32
    static let slotElements = 1_024

    /// Runs `plan`, with the run log in `directory` (which must exist and be empty).
    public static func run(_ plan: StormPlan, directory: String) async throws -> StormReport {
        let log = RunLog(directory: directory)
        let cases = plan.cases()
        // Threads, the supervisor, the event loops and the timers of sleeping tasks outlive
        // their first use: leaks are what a pool leaves beyond them.
        try await withDaemons(1, options: plan.options) { _ in try await Task.sleep(for: .milliseconds(1)) }
        let before = LeftBehind.now()
        let clock = ContinuousClock()
        let start = clock.now
        let thrown = try await throwJobs(cases, plan: plan, log: log)
        let elapsed = clock.now - start
        let after = await LeftBehind.settled(comparedTo: before)
        return StormReport(
            plan: plan, cases: cases, outcomes: thrown.outcomes, log: log, repeatedResolutions: thrown.repeated, slotsFree: thrown.slotsFree,
            slotCount: slotCount, daemonsDied: thrown.daemonsDied, before: before, after: after, elapsed: elapsed
        )
    }

    /// What throwing the jobs at a pool gave.
    private struct Thrown {
        var outcomes: [Int: Result<StormOutput, JobError>] = [:]
        var repeated = 0
        var daemonsDied = 0
        var slotsFree = 0
    }

    /// Starts the pool and the slot pool, throws `cases` at them and stops them.
    private static func throwJobs(_ cases: [StormCase], plan: StormPlan, log: RunLog) async throws -> Thrown {
        let pool = try SlotPool(slotByteCount: slotElements * MemoryLayout<Double>.stride, slotCount: slotCount)
        var thrown = Thrown()
        try await withDaemons(plan.daemons, options: plan.options) { daemons in
            let killer = Task {
                while !Task.isCancelled {
                    _ = log.killRequested()
                    try? await Task.sleep(for: .milliseconds(2))
                }
            }
            defer { killer.cancel() }
            // Spawned before the storm starts: a daemon that dies during a creation fails it.
            var actors: [StormActor] = []
            for index in 0..<plan.daemons { actors.append(try await daemons.spawn(StormActor.self, on: .daemon(index), restart: .recreate)) }
            thrown.outcomes = try await withThrowingTaskGroup(of: [(Int, Result<StormOutput, JobError>)].self) { group in
                group.addTask { try await submitAll(cases.filter { $0.source == .submit }, plan: plan, daemons: daemons, log: log, pool: pool) }
                group.addTask { await mapAll(cases.filter { $0.source == .map }, plan: plan, daemons: daemons, log: log) }
                let calls = cases.filter { $0.source == .actor }
                for index in 0..<plan.daemons {
                    let share = calls.enumerated().filter { $0.offset % plan.daemons == index }.map(\.element)
                    group.addTask { [actor = actors[index]] in try await callAll(share, on: actor, log: log, pool: pool) }
                }
                var all: [Int: Result<StormOutput, JobError>] = [:]
                for try await results in group {
                    for (id, result) in results { all[id] = result }
                }
                return all
            }
            thrown.repeated = daemons.repeatedResolutions
            thrown.daemonsDied = daemons.status().daemons.reduce(0) { $0 + $1.instance - 1 }
        }
        thrown.slotsFree = await eventually { pool.availableSlots == slotCount } ? slotCount : pool.availableSlots
        return thrown
    }

    /// A job of `storm` for `job`, holding a pool slot of ones if it is to.
    private static func job(_ job: StormCase, log: RunLog, pool: SlotPool) async throws -> StormJob {
        var slot: SharedArray<Double>?
        if job.usesSlot {
            var buffer = try await pool.acquire()
            buffer.withUnsafeMutableBytes { bytes in
                let values = bytes.bindMemory(to: Double.self)
                for index in 0..<slotElements { values[index] = 1 }
            }
            slot = try SharedArray(buffer: buffer, count: slotElements)
        }
        return StormJob(id: job.id, fate: job.fate, crashRuns: job.crashRuns, log: log, slot: slot)
    }

    private static func submitAll(
        _ cases: [StormCase], plan: StormPlan, daemons: Daemons, log: RunLog, pool: SlotPool
    ) async throws -> [(Int, Result<StormOutput, JobError>)] {
        var results: [(Int, Result<StormOutput, JobError>)] = []
        var start = 0
        while start < cases.count {
            let chunk = cases[start..<min(start + plan.window, cases.count)]
            var handles: [(Int, JobHandle<StormOutput>)] = []
            for entry in chunk {
                let timeout = entry.fate == .hang ? plan.hangTimeLimit : nil
                handles.append((entry.id, daemons.submit(try await job(entry, log: log, pool: pool), timeout: timeout, retries: entry.retries)))
            }
            for (id, handle) in handles { results.append((id, await handle.result)) }
            start += plan.window
        }
        return results
    }

    private static func mapAll(_ cases: [StormCase], plan: StormPlan, daemons: Daemons, log: RunLog) async -> [(Int, Result<StormOutput, JobError>)] {
        var results: [(Int, Result<StormOutput, JobError>)] = []
        var start = 0
        while start < cases.count {
            let chunk = Array(cases[start..<min(start + plan.mapSize, cases.count)])
            var options = MapOptions()
            options.retries = chunk[0].retries
            let outputs = await daemons.map(chunk, options: options) { StormJob(id: $0.id, fate: $0.fate, crashRuns: $0.crashRuns, log: log) }
            results += zip(chunk.map(\.id), outputs).map { ($0, $1) }
            start += plan.mapSize
        }
        return results
    }

    private static func callAll(_ cases: [StormCase], on actor: StormActor, log: RunLog, pool: SlotPool) async throws -> [(Int, Result<StormOutput, JobError>)] {
        var results: [(Int, Result<StormOutput, JobError>)] = []
        for entry in cases {
            let job = try await job(entry, log: log, pool: pool)
            do {
                results.append((entry.id, .success(try await actor.perform(job))))
            } catch let error as JobError {
                results.append((entry.id, .failure(error)))
            }
        }
        return results
    }
}

/// Polls `condition` for up to 10 s; whether it held.
func eventually(_ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(10)
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// What a host holds that a pool may leave behind: child processes, descriptors, shared memory.
public struct LeftBehind: Sendable, Equatable {
    /// Child processes (zombies included), as `pid name`.
    public var children: Set<String>
    /// Open descriptors.
    public var descriptors: Int
    /// Resident shared memory, kB.
    public var sharedKB: Int

    /// What each open descriptor refers to (`socket:[123]`, a path).
    public var descriptorTargets: [String]

    static func now() -> LeftBehind {
        let usage = MemoryUsage.current()
        let targets = ProcessInspection.directoryEntries("/proc/self/fd").compactMap { entry -> String? in
            var buffer = [CChar](repeating: 0, count: 512)
            let count = readlink("/proc/self/fd/\(entry)", &buffer, buffer.count - 1)
            return count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
        }
        let children = ProcessInspection.children().map { child in
            "\(child.pid) \(ProcessInspection.name(of: child.pid) ?? "?")\(child.isZombie ? " (zombie)" : "")"
        }
        return LeftBehind(children: Set(children), descriptors: usage.openDescriptors, sharedKB: usage.residentSharedKB, descriptorTargets: targets.sorted())
    }

    /// The child processes now that were not there `before` (a test runner may hold
    /// children of its own: a server, a tool another test started).
    func childrenAdded(since before: LeftBehind) -> [String] {
        children.subtracting(before.children).sorted()
    }

    /// The descriptors open now that were not in `before` (by what they refer to; sockets
    /// and pipes by kind).
    func descriptorsAdded(since before: LeftBehind) -> [String] {
        func kinds(_ targets: [String]) -> [String: Int] {
            Dictionary(grouping: targets) { $0.replacing(/\[[0-9]+\]/, with: "") }.mapValues(\.count)
        }
        let old = kinds(before.descriptorTargets)
        return kinds(descriptorTargets).compactMap { kind, count in
            count > old[kind, default: 0] ? "\(count - old[kind, default: 0]) × \(kind)" : nil
        }.sorted()
    }

    /// What is held a moment after a pool stopped (closing is asynchronous in places: a
    /// channel closes on its event loop, a reaped daemon's pidfd after the reap).
    static func settled(comparedTo before: LeftBehind) async -> LeftBehind {
        var after = now()
        for _ in 0..<100 where !after.childrenAdded(since: before).isEmpty || after.descriptors > before.descriptors {
            try? await Task.sleep(for: .milliseconds(50))
            after = now()
        }
        return after
    }
}
