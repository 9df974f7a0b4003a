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
/// Child tasks a job starts are ordinary tasks on the global executor.
///
/// A cancel request cancels the running job's task (cooperative: the job sees it at
/// its next `Task.isCancelled` check once it has suspended at least once, since the
/// loop reads the request only while it is free), or drops a waiting job at once.
final class JobRunner {
    private let channel: any Channel
    private let registry: JobRegistry
    private let context: DaemonContext
    private var waiting: Deque<RunRequest> = []
    private var running: (requestID: UInt64, task: Task<Void, Never>?)?
    private var starting = false

    init(channel: any Channel, registry: JobRegistry, context: DaemonContext) {
        self.channel = channel
        self.registry = registry
        self.context = context
    }

    func enqueue(_ request: RunRequest) {
        waiting.append(request)
        startNextIfIdle()
    }

    func cancel(_ requestID: UInt64) {
        if let running, running.requestID == requestID {
            running.task?.cancel()
        } else if let position = waiting.firstIndex(where: { $0.requestID == requestID }) {
            waiting.remove(at: position)
            let report = FailureReport(reason: .cancelled, errorType: "Swift.CancellationError", message: "the job was cancelled before it started", location: "daemon queue")
            send(RunResult(requestID: requestID, outcome: .failure(report)))
        }
    }

    /// Starts waiting jobs while none is running. A job that finishes without
    /// suspending finishes inside `Task.immediate`, re-entering `finished`; the loop
    /// here (not recursion) then starts the next one.
    private func startNextIfIdle() {
        guard !starting else { return }
        starting = true
        defer { starting = false }
        let eventLoop = channel.eventLoop
        let runner = NIOLoopBound(self, eventLoop: eventLoop)
        while running == nil, let request = waiting.popFirst() {
            running = (request.requestID, nil)
            let task = Task.immediate { [registry, context] in
                let outcome = await DaemonContext.$current.withValue(context) {
                    await registry.run(request)
                }
                let result = RunResult(requestID: request.requestID, outcome: outcome)
                if eventLoop.inEventLoop {
                    runner.value.finished(result)
                } else {
                    eventLoop.execute { runner.value.finished(result) }
                }
            }
            if running?.requestID == request.requestID { running?.task = task }
        }
    }

    private func finished(_ result: RunResult) {
        running = nil
        send(result)
        startNextIfIdle()
    }

    private func send(_ result: RunResult) {
        channel.writeAndFlush(WireMessage.result(result).frame(allocator: channel.allocator), promise: nil)
    }
}
