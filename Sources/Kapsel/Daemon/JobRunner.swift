import DequeModule
import KapselWire
import NIOCore

/// Runs a daemon's jobs one at a time, in the order they arrived.
///
/// Confined to the connection's event loop: jobs run in their own tasks, and each
/// finished job comes back to the loop to write its result and start the next.
/// A cancel request cancels the running job's task (cooperative: the job sees
/// `Task.isCancelled`), or drops a waiting job at once.
final class JobRunner {
    private let channel: any Channel
    private let registry: JobRegistry
    private let context: DaemonContext
    private var waiting: Deque<RunRequest> = []
    private var running: (requestID: UInt64, task: Task<Void, Never>)?

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
            running.task.cancel()
        } else if let position = waiting.firstIndex(where: { $0.requestID == requestID }) {
            waiting.remove(at: position)
            let report = FailureReport(reason: .cancelled, errorType: "Swift.CancellationError", message: "the job was cancelled before it started", location: "daemon queue")
            send(RunResult(requestID: requestID, outcome: .failure(report)))
        }
    }

    private func startNextIfIdle() {
        guard running == nil, let request = waiting.popFirst() else { return }
        let runner = NIOLoopBound(self, eventLoop: channel.eventLoop)
        let eventLoop = channel.eventLoop
        let task = Task { [registry, context] in
            let outcome = await DaemonContext.$current.withValue(context) {
                await registry.run(request)
            }
            eventLoop.execute {
                runner.value.finished(RunResult(requestID: request.requestID, outcome: outcome))
            }
        }
        running = (request.requestID, task)
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
