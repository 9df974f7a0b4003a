import DequeModule

/// The unresolved jobs of a pool: a record per job, the FIFO queue of those waiting for
/// any daemon, the `everywhere` setup templates, and the time limit of each attempt.
///
/// A job is in `records` from its submission until the action that resolves it, and only
/// code that removes it emits that action: that is what makes every job resolve once.
/// Each time a job is sent to a daemon it starts a new attempt, whose deadline is keyed
/// by the job and the attempt, so a deadline outlived by its attempt (the daemon died,
/// the job went back to wait and was retried) can never end the next one.
struct JobQueue {
    /// One submitted, unresolved job.
    struct Record {
        let id: UInt64
        let jobType: String
        /// The job, with the shared memory it refers to (sent again on a retry).
        let envelope: Envelope
        let resolver: any JobResolver
        /// The longest one attempt may run on a daemon.
        let timeout: Duration?
        var retriesLeft: Int
        /// For `everywhere` setup jobs: which template this runs.
        let setupTemplate: Int?
        /// For a call to a pooled actor: the actor and the call target.
        let call: PooledCall?
        /// The slot running it, while an attempt is under way.
        var slot: Int?
        /// How many times it has been sent to a daemon.
        var attempts = 0
        /// How many times its daemon died under it.
        var crashes = 0

        /// The deadline of the attempt under way, if the job has a time limit.
        var deadline: TimerEvent? {
            guard timeout != nil, slot != nil else { return nil }
            return .timeout(job: id, attempt: attempts)
        }
    }

    /// A call to a pooled actor, queued like a job.
    struct PooledCall {
        let actor: KapselActorID
        let target: String
    }

    /// An `everywhere` job, run first on every daemon that starts later.
    struct SetupTemplate {
        let jobType: String
        let envelope: Envelope
    }

    private(set) var records: [UInt64: Record] = [:]
    /// Jobs waiting for the first idle daemon (dispatcher mode), oldest first.
    private(set) var waiting: Deque<UInt64> = []
    private(set) var templates: [SetupTemplate] = []
    /// Ids the dispatcher gives its own jobs (setup runs, re-creations), above any
    /// submitted job's.
    private var nextInternalID: UInt64 = 1 << 63

    subscript(id: UInt64) -> Record? { records[id] }

    var isEmpty: Bool { records.isEmpty }

    /// Adds a job (not yet queued anywhere).
    mutating func add(_ record: Record) {
        records[record.id] = record
    }

    /// Queues `id` behind every waiting job.
    mutating func enqueue(_ id: UInt64) {
        waiting.append(id)
    }

    /// Queues `id` ahead of every waiting job (a job that comes back from a daemon).
    mutating func requeueFirst(_ id: UInt64) {
        waiting.prepend(id)
    }

    /// The oldest waiting job, taken off the queue.
    mutating func takeNextWaiting() -> UInt64? {
        waiting.popFirst()
    }

    /// Takes `id` off the queue, if it waits there.
    mutating func withdraw(_ id: UInt64) {
        if let position = waiting.firstIndex(of: id) { waiting.remove(at: position) }
    }

    /// Empties the queue; returns what waited, oldest first.
    mutating func takeAllWaiting() -> Deque<UInt64> {
        defer { waiting = [] }
        return waiting
    }

    /// Removes the record of `id` (to resolve it).
    mutating func remove(_ id: UInt64) -> Record? {
        records.removeValue(forKey: id)
    }

    /// Removes every record, oldest first (the pool stops).
    mutating func removeAll() -> [Record] {
        defer {
            records = [:]
            waiting = []
        }
        return records.values.sorted { $0.id < $1.id }
    }

    /// Starts an attempt of `id` on `slot`; returns the record as sent.
    mutating func send(_ id: UInt64, to slot: Int) -> Record? {
        guard var record = records[id] else { return nil }
        record.slot = slot
        record.attempts += 1
        records[id] = record
        return record
    }

    /// The attempt of `id` ended without an answer (its daemon is gone); returns the
    /// record as it was during the attempt.
    mutating func attemptEnded(_ id: UInt64) -> Record? {
        guard let record = records[id] else { return nil }
        records[id]?.slot = nil
        return record
    }

    /// Counts a crash of `id`'s daemon under it and uses up one retry; false when none is left.
    mutating func consumeRetry(_ id: UInt64) -> Bool {
        records[id]?.crashes += 1
        guard let left = records[id]?.retriesLeft, left > 0 else { return false }
        records[id]?.retriesLeft = left - 1
        return true
    }

    /// Whether `attempt` is the attempt of `id` under way.
    func isUnderWay(_ id: UInt64, attempt: Int) -> Bool {
        guard let record = records[id] else { return false }
        return record.slot != nil && record.attempts == attempt
    }

    /// Adds a setup template; returns its index.
    mutating func addTemplate(_ template: SetupTemplate) -> Int {
        templates.append(template)
        return templates.count - 1
    }

    /// A fresh id for a job of the dispatcher's own.
    mutating func makeInternalID() -> UInt64 {
        defer { nextInternalID += 1 }
        return nextInternalID
    }
}
