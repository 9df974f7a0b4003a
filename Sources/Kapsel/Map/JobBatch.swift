import Synchronization

/// Several jobs of one type run one after another in one daemon, as one submission:
/// one round trip for all of them, each job keeping its own result. What `map` and
/// prefetching on daemons send, and open to any code that batches short jobs itself.
///
/// ```swift
/// daemons.submitBatch((0..<8).map { Render(frame: $0) }).whenResolved { outcome in
///     for (frame, result) in outcome.results.enumerated() { show(frame, result) }
/// }
/// ```
///
/// When a job of the batch kills its daemon, the batch's jobs are run again one per
/// submission, so only that job reports the crash. A failure of the batch as a whole
/// (a time-out, `cancel()`) is every job's result.
public final class JobBatch<Item: Job>: Sendable {
    /// How a batch ended: one result per job, in order.
    public struct Outcome: Sendable {
        /// Each job's output or error, in the order the jobs were given.
        public var results: [Result<Item.Output, JobError>]
        /// How long running the jobs took in the daemon, when they ran as one batch.
        public var runTime: Duration?
    }

    /// Number of jobs.
    public let count: Int
    private let daemons: Daemons
    private let items: [Item]
    private let timeout: Duration?
    private let retries: Int?
    private let state = Mutex(State())

    private struct State {
        var running: [any CancellableJob] = []
        var singles: [Result<Item.Output, JobError>?] = []
        var pendingSingles = 0
        var outcome: Outcome?
        var callbacks: [@Sendable (Outcome) -> Void] = []
        var cancelled = false
    }

    init(daemons: Daemons, items: [Item], timeout: Duration?, retries: Int?) {
        precondition(!items.isEmpty, "a batch needs at least one job")
        self.count = items.count
        self.daemons = daemons
        self.items = items
        self.timeout = timeout
        self.retries = retries
        let handle = daemons.submit(MapBatch(items: items), timeout: timeout, retries: retries)
        state.withLock { $0.running = [handle] }
        handle.whenResolved { [self] result in batchResolved(result) }
    }

    /// Calls `callback` with the outcome once every job has resolved (at once if they
    /// have), on the thread that resolves the last one: it must not block.
    public func whenResolved(_ callback: @escaping @Sendable (Outcome) -> Void) {
        let ready: Outcome? = state.withLock { state in
            if state.outcome == nil { state.callbacks.append(callback) }
            return state.outcome
        }
        if let ready { callback(ready) }
    }

    /// Cancels every job not yet resolved, as `JobHandle.cancel()` does.
    public func cancel() {
        let running = state.withLock { state in
            state.cancelled = true
            return state.running
        }
        for job in running { job.cancel() }
    }

    private func batchResolved(_ result: Result<MapBatch<Item>.Output, JobError>) {
        switch result {
        case .success(let output):
            let results = output.outcomes.map { outcome -> Result<Item.Output, JobError> in
                switch outcome {
                case .success(let value):
                    .success(value)
                case .failure(let failure):
                    .failure(JobError(.remote, failure.message, jobType: Item.jobTypeName, remoteErrorType: failure.errorType, location: failure.location))
                }
            }
            finish(Outcome(results: results, runTime: .nanoseconds(output.runNanoseconds)))
        case .failure(let error) where (error.code == .crashed || error.code == .connectionLost) && count > 1:
            runOneByOne()
        case .failure(let error):
            finish(Outcome(results: Array(repeating: .failure(error), count: count), runTime: nil))
        }
    }

    /// One of the jobs killed its daemon: runs them one per submission to find which.
    private func runOneByOne() {
        let resubmit = state.withLock { state in
            guard !state.cancelled else { return false }
            state.singles = Array(repeating: nil, count: count)
            state.pendingSingles = count
            return true
        }
        guard resubmit else {
            let error = JobError(.cancelled, "the batch was cancelled", jobType: Item.jobTypeName)
            return finish(Outcome(results: Array(repeating: .failure(error), count: count), runTime: nil))
        }
        let handles = items.map { daemons.submit($0, timeout: timeout, retries: retries) }
        let cancelled = state.withLock { state in
            state.running = handles
            return state.cancelled
        }
        if cancelled { handles.forEach { $0.cancel() } }
        for (position, handle) in handles.enumerated() {
            handle.whenResolved { [self] result in singleResolved(position, result) }
        }
    }

    private func singleResolved(_ position: Int, _ result: Result<Item.Output, JobError>) {
        let results: [Result<Item.Output, JobError>]? = state.withLock { state in
            state.singles[position] = result
            state.pendingSingles -= 1
            return state.pendingSingles == 0 ? state.singles.map { $0! } : nil
        }
        if let results { finish(Outcome(results: results, runTime: nil)) }
    }

    private func finish(_ outcome: Outcome) {
        let callbacks = state.withLock { state in
            state.outcome = outcome
            state.running = []
            defer { state.callbacks = [] }
            return state.callbacks
        }
        for callback in callbacks { callback(outcome) }
    }
}

/// A submitted job that can be cancelled, whatever its output type.
protocol CancellableJob: Sendable {
    func cancel()
}

extension JobHandle: CancellableJob {}

extension Daemons {
    /// Submits `jobs` as one batch, run one after another in one daemon (see `JobBatch`).
    /// `timeout` applies to the whole batch.
    public func submitBatch<J: Job>(_ jobs: [J], timeout: Duration? = nil, retries: Int? = nil) -> JobBatch<J> {
        JobBatch(daemons: self, items: jobs, timeout: timeout, retries: retries)
    }
}
