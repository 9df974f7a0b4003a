import DequeModule
import KapselWire
import Synchronization

/// Runs a daemon's jobs one at a time, in the order they arrived.
///
/// Jobs arrive from the thread that reads the connection. With `startsInline` a job
/// starts *on that thread* (`Task.immediate`) and runs there until its first suspension
/// point; from then on it continues on the global concurrent executor, like any task. A
/// job that never suspends (the common short job) therefore runs and answers on the
/// reading thread with no hop at all, which is what keeps a round trip close to the raw
/// socket's floor. On a connection with heartbeats (over TCP) jobs start on the global
/// executor instead, so that a job computing without suspending never silences the loop
/// that answers the host's heartbeats. Child tasks a job starts are ordinary tasks.
///
/// A job finishes on whichever thread ran its end: its result goes out from there, and
/// the next waiting job starts there. The runner's state is behind a lock; one thread at a
/// time starts jobs (a loop, not a recursion, when jobs finish inline one after another).
///
/// A cancel request cancels the running job's task (cooperative: the job sees it at its
/// next `Task.isCancelled` check once it has suspended at least once, since the reader
/// takes the request only while it is free), or drops a waiting job at once.
///
/// Shared memory a job carries is received (its descriptors) as the job arrives, and the
/// shared memory of a result goes with the result, through the connection's writer.
final class JobRunner: Sendable {
    private struct Waiting: Sendable {
        var request: RunRequest
        /// The job with its shared memory, or why that memory could not be received.
        var envelope: Result<Envelope, any Error>
    }

    /// The job under way.
    private struct Running {
        let requestID: UInt64
        /// Its task, once `Task.immediate` returned it (to cancel it).
        var task: Task<Void, Never>?
        /// It answered while the loop that started it still runs, which frees its slot.
        var answered = false
    }

    private struct State: ~Copyable {
        var waiting: Deque<Waiting> = []
        var running: Running?
        /// A thread is starting jobs: one that finishes meanwhile leaves the next to it.
        var starting = false
        /// The connection is gone: nothing more starts.
        var abandoned = false
    }

    private let writer: ConnectionWriter
    private let carrier: any AttachmentCarrier
    private let registry: JobRegistry
    private let context: DaemonContext
    private let inlineLimit: Int
    private let startsInline: Bool
    private let state = Mutex(State())
    /// Called as each job finishes, just before its result is sent (so that a daemon
    /// retiring after it says so before the host can send it more).
    private let onJobFinished: (@Sendable () -> Void)?

    /// Whether no job is running or waiting.
    var isIdle: Bool { state.withLock { $0.running == nil && $0.waiting.isEmpty } }

    init(
        writer: ConnectionWriter, carrier: any AttachmentCarrier, registry: JobRegistry, context: DaemonContext, inlineLimit: Int, startsInline: Bool,
        onJobFinished: (@Sendable () -> Void)? = nil
    ) {
        self.writer = writer
        self.carrier = carrier
        self.registry = registry
        self.context = context
        self.inlineLimit = inlineLimit
        self.startsInline = startsInline
        self.onJobFinished = onJobFinished
    }

    func enqueue(_ request: RunRequest) {
        let envelope = Result { Envelope(payload: request.payload, attachments: try carrier.receiveAttachments(request.attachments, tag: request.requestID)) }
        state.withLock { $0.waiting.append(Waiting(request: request, envelope: envelope)) }
        startWaiting()
    }

    func cancel(_ requestID: UInt64) {
        enum Found { case running(Task<Void, Never>?), waiting, none }
        let found = state.withLock { state -> Found in
            if let running = state.running, running.requestID == requestID { return .running(running.task) }
            guard let position = state.waiting.firstIndex(where: { $0.request.requestID == requestID }) else { return .none }
            state.waiting.remove(at: position)
            return .waiting
        }
        switch found {
        case .running(let task):
            task?.cancel()
        case .waiting:
            let report = FailureReport(reason: .cancelled, errorType: "Swift.CancellationError", message: "the job was cancelled before it started", location: "daemon queue")
            writer.send(.reply(to: requestID, .failure(report), isCall: false))
        case .none:
            break
        }
    }

    /// The connection is gone: waiting jobs are dropped and the running one cancelled
    /// (the host has resolved them already).
    func abandon() {
        let task = state.withLock { state in
            state.abandoned = true
            state.waiting.removeAll()
            return state.running?.task
        }
        task?.cancel()
    }

    /// Starts waiting jobs while none is running, unless another thread is at it. A job
    /// that finishes without suspending finishes inside `Task.immediate`; its slot is
    /// freed here once that returned — with the job's task gone, and with it the memory the
    /// job held (so the next job finds it released) — and the next starts.
    private func startWaiting() {
        var next = state.withLock { state -> Waiting? in
            guard !state.starting else { return nil }
            guard let next = Self.takeNext(&state) else { return nil }
            state.starting = true
            return next
        }
        while let waiting = next.take() {
            let requestID = waiting.request.requestID
            let task = start(waiting)
            next = state.withLock { state -> Waiting? in
                if state.running?.requestID == requestID {
                    if state.running?.answered == true { state.running = nil } else { state.running?.task = task }
                }
                guard let next = Self.takeNext(&state) else {
                    state.starting = false
                    return nil
                }
                return next
            }
        }
    }

    /// The next job to start, now marked running; nil while one runs.
    private static func takeNext(_ state: inout State) -> Waiting? {
        guard state.running == nil, !state.abandoned, let next = state.waiting.popFirst() else { return nil }
        state.running = Running(requestID: next.request.requestID)
        return next
    }

    private func start(_ next: consuming Waiting) -> Task<Void, Never> {
        let request = next.request
        // The job's memory lives only as long as the job: the task lets go of it when it has run.
        let received = HandOff(next.envelope)
        let work: @Sendable () async -> Void = { [self, registry, context, inlineLimit] in
            let completion: Completion
            switch received.take() {
            case .success(let envelope):
                completion = await DaemonContext.$current.withValue(context) {
                    await registry.run(request.jobType, envelope, inlineLimit: inlineLimit)
                }
            case .failure(let error):
                completion = .failure(FailureReport(
                    reason: .jobDecodingFailed, errorType: String(reflecting: type(of: error)),
                    message: "the job's shared memory could not be received: \(error)", location: "daemon"))
            }
            finished(request.requestID, completion)
        }
        return startsInline ? Task.immediate(operation: work) : Task(operation: work)
    }

    /// A job ended (on whichever thread ran its end): its result goes out; its slot is
    /// freed, and the next job started, here — or by the loop that started it, when that
    /// one still runs (`startWaiting`).
    private func finished(_ requestID: UInt64, _ completion: Completion) {
        onJobFinished?()
        writer.send(.reply(to: requestID, completion, isCall: false))
        let startHere = state.withLock { state -> Bool in
            guard !state.starting else {
                state.running?.answered = true
                return false
            }
            state.running = nil
            return true
        }
        if startHere { startWaiting() }
    }
}

/// A value handed from one thread to a task once: the task takes it, and from then on
/// only the task holds it.
private final class HandOff<Value: Sendable>: Sendable {
    private let value: Mutex<Value?>

    init(_ value: Value) {
        self.value = Mutex(value)
    }

    /// The value, once; it is gone from here after.
    func take() -> Value {
        value.withLock { $0.take() }!
    }
}
