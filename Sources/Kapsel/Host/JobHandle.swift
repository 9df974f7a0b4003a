import Synchronization

/// The eventual outcome of a submitted job. `submit` returns it at once; it
/// resolves exactly once, asynchronously, with the job's output or a `JobError`.
///
/// ```swift
/// let handle = daemons.submit(Simulate(mean: 2, sd: 5, n: 1_000_000))
/// handle.isResolved            // false while it runs
/// let mean = try await handle.value
/// ```
///
/// Cancelling a task that awaits `value` or `result` cancels the job itself, as
/// `cancel()` does.
public final class JobHandle<Output: Codable & Sendable>: Sendable {
    private enum Waiter {
        case task(CheckedContinuation<Result<Output, JobError>, Never>)
        case callback(@Sendable (Result<Output, JobError>) -> Void)

        func resume(with result: Result<Output, JobError>) {
            switch self {
            case .task(let continuation): continuation.resume(returning: result)
            case .callback(let callback): callback(result)
            }
        }
    }

    private enum State {
        case pending([Waiter])
        case resolved(Result<Output, JobError>)
    }

    /// The job's id within its `Daemons`.
    public let id: UInt64
    /// The job's registered type name.
    public let jobType: String
    private let state = Mutex<State>(.pending([]))
    private let canceller: (@Sendable (UInt64) -> Void)?
    /// Decodes actor references in the output.
    private let actorSystem: KapselActorSystem?
    /// Where the job's resolution is counted and timed, and when it was submitted.
    private let meter: (metrics: PoolMetrics, submittedAt: ContinuousClock.Instant)?

    init(id: UInt64, jobType: String, actorSystem: KapselActorSystem? = nil, metrics: PoolMetrics? = nil, canceller: (@Sendable (UInt64) -> Void)?) {
        self.id = id
        self.jobType = jobType
        self.actorSystem = actorSystem
        self.canceller = canceller
        self.meter = metrics.map { ($0, ContinuousClock.now) }
        meter?.metrics.jobSubmitted()
    }

    /// Whether the job has resolved.
    public var isResolved: Bool {
        state.withLock { if case .resolved = $0 { true } else { false } }
    }

    /// The outcome if the job has resolved, nil while it is pending (polling).
    public var currentResult: Result<Output, JobError>? {
        state.withLock { if case .resolved(let result) = $0 { result } else { nil } }
    }

    /// Waits for the outcome.
    public var result: Result<Output, JobError> {
        get async {
            if let resolved = currentResult { return resolved }
            return await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let ready: Result<Output, JobError>? = state.withLock { state in
                        switch state {
                        case .resolved(let result):
                            return result
                        case .pending(let waiters):
                            state = .pending(waiters + [.task(continuation)])
                            return nil
                        }
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                self.cancel()
            }
        }
    }

    /// Calls `callback` with the outcome once the job resolves (at once if it has), on
    /// the thread that resolves it (a connection's event loop): it must not block. For
    /// code that reacts to many jobs without a task waiting for each.
    ///
    /// ```swift
    /// daemons.submit(Render(frame: 7)).whenResolved { result in frames.store(7, result) }
    /// ```
    public func whenResolved(_ callback: @escaping @Sendable (Result<Output, JobError>) -> Void) {
        let ready: Result<Output, JobError>? = state.withLock { state in
            switch state {
            case .resolved(let result):
                return result
            case .pending(let waiters):
                state = .pending(waiters + [.callback(callback)])
                return nil
            }
        }
        if let ready { callback(ready) }
    }

    /// Waits for the output; throws the `JobError` if the job failed.
    public var value: Output {
        get async throws(JobError) {
            try await result.get()
        }
    }

    /// Cancels the job: a queued job is dropped; a running one is asked to stop
    /// (task cancellation in the daemon) and its daemon is replaced if it does not
    /// stop within the grace period. The handle resolves with `.cancelled` unless it
    /// had already resolved.
    public func cancel() {
        if !isResolved { canceller?(id) }
    }
}

/// How the dispatcher resolves a handle without knowing its output type.
protocol JobResolver: AnyObject, Sendable {
    /// Resolves with the encoded output or an error. Returns false if it had already resolved.
    @discardableResult
    func resolve(_ outcome: JobOutcome) -> Bool
    /// When the job was submitted, for a job whose queue wait is measured.
    var submittedAt: ContinuousClock.Instant? { get }
}

extension JobResolver {
    /// Not measured: the dispatcher's own setup runs and actor calls.
    var submittedAt: ContinuousClock.Instant? { nil }
}

/// What the dispatcher hands a resolver.
enum JobOutcome: Sendable {
    /// The encoded output, with the shared memory it refers to.
    case value(Envelope)
    case failure(JobError)
}

extension JobHandle: JobResolver {
    var submittedAt: ContinuousClock.Instant? { meter?.submittedAt }

    @discardableResult
    func resolve(_ outcome: JobOutcome) -> Bool {
        let result: Result<Output, JobError>
        switch outcome {
        case .failure(let error):
            result = .failure(error)
        case .value(let envelope):
            do {
                result = .success(try envelope.decode(Output.self, actorSystem: actorSystem))
            } catch {
                result = .failure(JobError(.resultDecodingFailed, "the output does not decode as \(Output.self): \(error)", jobType: jobType))
            }
        }
        let waiters: [Waiter]? = state.withLock { state in
            guard case .pending(let waiters) = state else { return nil }
            state = .resolved(result)
            return waiters
        }
        guard let waiters else { return false }
        if let meter {
            let failure: JobError? = if case .failure(let error) = result { error } else { nil }
            meter.metrics.jobResolved(failure: failure, submittedAt: meter.submittedAt)
        }
        for waiter in waiters { waiter.resume(with: result) }
        return true
    }
}
