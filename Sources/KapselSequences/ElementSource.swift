import Kapsel
import Synchronization

/// Where a `Prefetched` sequence gets its elements computed.
protocol ElementSource<Value>: Sendable {
    associatedtype Value: Sendable

    /// How many consecutive elements to start together now.
    var chunkSize: Int { get }

    /// Starts computing the elements `indices` and calls `completion`, from any thread,
    /// with the results of consecutive elements from the first one's index on (for
    /// all of `indices` at once or in several calls), exactly once per element.
    func start(_ indices: Range<Int>, completion: @escaping @Sendable (_ first: Int, _ results: [Result<Value, any Error>]) -> Void)
}

/// Elements computed by an async function, each in a task of its own.
struct TaskSource<Value: Sendable>: ElementSource {
    let compute: @Sendable (Int) async throws -> Value

    var chunkSize: Int { 1 }

    func start(_ indices: Range<Int>, completion: @escaping @Sendable (_ first: Int, _ results: [Result<Value, any Error>]) -> Void) {
        for index in indices {
            Task.detached { [compute] in
                do {
                    completion(index, [.success(try await compute(index))])
                } catch {
                    completion(index, [.failure(error)])
                }
            }
        }
    }
}

/// Elements that are jobs, run in daemons in batches of consecutive elements (one round
/// trip per batch), sized for about 4 ms of work each while leaving room in the window
/// for two batches per daemon: one running, one queued behind it.
final class DaemonSource<Item: Job>: ElementSource {
    typealias Value = Item.Output

    private let jobs: LazyIndexed<Item>
    private let daemons: Daemons
    private let fixedBatchSize: Int?
    private let sizer: Mutex<BatchSizer>

    init(jobs: LazyIndexed<Item>, daemons: Daemons, buffer: Int, batchSize: Int?) {
        self.jobs = jobs
        self.daemons = daemons
        self.fixedBatchSize = batchSize
        self.sizer = Mutex(BatchSizer(limit: buffer / (2 * Swift.max(1, daemons.count))))
    }

    var chunkSize: Int { fixedBatchSize ?? sizer.withLock { $0.size } }

    func start(_ indices: Range<Int>, completion: @escaping @Sendable (_ first: Int, _ results: [Result<Value, any Error>]) -> Void) {
        let batch = daemons.submitBatch(indices.map { jobs[$0] })
        batch.whenResolved { [self] outcome in
            if fixedBatchSize == nil, let runTime = outcome.runTime {
                sizer.withLock { $0.record(runTime: runTime, count: indices.count) }
            }
            completion(indices.lowerBound, outcome.results.map { $0.mapError { $0 } })
        }
    }
}
