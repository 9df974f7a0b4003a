import DequeModule
import KapselWire
import NIOCore

/// Runs a daemon's jobs one at a time, in the order they arrived.
///
/// Confined to the connection's event loop. A job starts *immediately on the loop
/// thread* (`Task.immediate`) and runs there until its first suspension point; from
/// then on it continues on the global concurrent executor, like any task. A job that
/// never suspends (the common short job) therefore runs and answers with no thread
/// hop at all, which is what keeps a round trip close to the raw socket's floor.
/// On a connection with heartbeats (over TCP) jobs start on the global executor
/// instead, so that a job computing without suspending never silences the loop that
/// answers the host's heartbeats. Child tasks a job starts are ordinary tasks on the global executor.
///
/// A cancel request cancels the running job's task (cooperative: the job sees it at
/// its next `Task.isCancelled` check once it has suspended at least once, since the
/// loop reads the request only while it is free), or drops a waiting job at once.
///
/// Shared memory a job carries is received (its descriptors) as the job arrives, and
/// the shared memory of a result goes with the result, through the connection's writer.
final class JobRunner {
    private struct Waiting {
        var request: RunRequest
        /// The job with its shared memory, or why that memory could not be received.
        var envelope: Result<Envelope, any Error>
    }

    private let writer: ConnectionWriter
    private let carrier: any AttachmentCarrier
    private let registry: JobRegistry
    private let context: DaemonContext
    private let inlineLimit: Int
    private let startsOnLoop: Bool
    private var waiting: Deque<Waiting> = []
    private var running: (requestID: UInt64, task: Task<Void, Never>?)?
    private var starting = false
    /// Called on the loop as each job finishes, just before its result is sent (so that
    /// a daemon retiring after it says so before the host can send it more).
    var onJobFinished: (() -> Void)?

    /// Whether no job is running or waiting.
    var isIdle: Bool { running == nil && waiting.isEmpty }

    init(writer: ConnectionWriter, carrier: any AttachmentCarrier, registry: JobRegistry, context: DaemonContext, inlineLimit: Int, startsOnLoop: Bool) {
        self.writer = writer
        self.carrier = carrier
        self.registry = registry
        self.context = context
        self.inlineLimit = inlineLimit
        self.startsOnLoop = startsOnLoop
    }

    func enqueue(_ request: RunRequest) {
        let envelope = Result { Envelope(payload: request.payload, attachments: try carrier.receiveAttachments(request.attachments, tag: request.requestID)) }
        waiting.append(Waiting(request: request, envelope: envelope))
        startNextIfIdle()
    }

    func cancel(_ requestID: UInt64) {
        if let running, running.requestID == requestID {
            running.task?.cancel()
        } else if let position = waiting.firstIndex(where: { $0.request.requestID == requestID }) {
            waiting.remove(at: position)
            let report = FailureReport(reason: .cancelled, errorType: "Swift.CancellationError", message: "the job was cancelled before it started", location: "daemon queue")
            writer.send(.reply(to: requestID, .failure(report), isCall: false))
        }
    }

    /// The connection is gone: waiting jobs are dropped and the running one cancelled
    /// (the host has resolved them already).
    func abandon() {
        waiting.removeAll()
        running?.task?.cancel()
    }

    /// Starts waiting jobs while none is running. A job that finishes without
    /// suspending finishes inside `Task.immediate`, re-entering `finished`; the loop
    /// here (not recursion) then starts the next one.
    private func startNextIfIdle() {
        guard !starting else { return }
        starting = true
        defer { starting = false }
        let eventLoop = writer.eventLoop
        let runner = NIOLoopBound(self, eventLoop: eventLoop)
        while running == nil, let next = waiting.popFirst() {
            let request = next.request
            running = (request.requestID, nil)
            let work: @Sendable () async -> Void = { [registry, context, inlineLimit] in
                let completion: Completion
                switch next.envelope {
                case .success(let envelope):
                    completion = await DaemonContext.$current.withValue(context) {
                        await registry.run(request.jobType, envelope, inlineLimit: inlineLimit)
                    }
                case .failure(let error):
                    completion = .failure(FailureReport(
                        reason: .jobDecodingFailed, errorType: String(reflecting: type(of: error)),
                        message: "the job's shared memory could not be received: \(error)", location: "daemon"))
                }
                if eventLoop.inEventLoop {
                    runner.value.finished(request.requestID, completion)
                } else {
                    eventLoop.execute { runner.value.finished(request.requestID, completion) }
                }
            }
            let task = startsOnLoop ? Task.immediate(operation: work) : Task(operation: work)
            if running?.requestID == request.requestID { running?.task = task }
        }
    }

    private func finished(_ requestID: UInt64, _ completion: Completion) {
        running = nil
        onJobFinished?()
        writer.send(.reply(to: requestID, completion, isCall: false))
        startNextIfIdle()
    }
}
