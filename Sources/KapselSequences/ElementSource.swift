import Kapsel
import Synchronization

/// Where a `Prefetched` sequence gets its elements computed.
protocol ElementSource<Value>: Sendable {
    associatedtype Value: Sendable

    /// How many consecutive elements to start together now.
    var chunkSize: Int { get }

    /// Starts computing the elements `indices` and calls `completion` once per element
    /// with its result, from any thread.
    func start(_ indices: Range<Int>, completion: @escaping @Sendable (Int, Result<Value, any Error>) -> Void)
}

/// Elements computed by an async function, each in a task of its own.
struct TaskSource<Value: Sendable>: ElementSource {
    let compute: @Sendable (Int) async throws -> Value

    var chunkSize: Int { 1 }

    func start(_ indices: Range<Int>, completion: @escaping @Sendable (Int, Result<Value, any Error>) -> Void) {
        for index in indices {
            Task.detached { [compute] in
                do {
                    completion(index, .success(try await compute(index)))
                } catch {
                    completion(index, .failure(error))
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
    private let largestBatch: Int
    private let batchSize: Mutex<Int>
    private let isAdaptive: Bool

    init(jobs: LazyIndexed<Item>, daemons: Daemons, buffer: Int, batchSize: Int?) {
        self.jobs = jobs
        self.daemons = daemons
        self.largestBatch = batchSize ?? Swift.max(1, buffer / (2 * Swift.max(1, daemons.count)))
        self.batchSize = Mutex(batchSize ?? 1)
        self.isAdaptive = batchSize == nil
    }

    var chunkSize: Int { batchSize.withLock { $0 } }

    func start(_ indices: Range<Int>, completion: @escaping @Sendable (Int, Result<Value, any Error>) -> Void) {
        let batch = daemons.submitBatch(indices.map { jobs[$0] })
        batch.whenResolved { [self] outcome in
            if let runTime = outcome.runTime { resize(after: runTime, count: indices.count) }
            for (index, result) in zip(indices, outcome.results) { completion(index, result.mapError { $0 }) }
        }
    }

    private func resize(after runTime: Duration, count: Int) {
        guard isAdaptive else { return }
        let (seconds, attoseconds) = runTime.components
        let perItem = Swift.max((Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(count), 1_000)
        batchSize.withLock { $0 = Swift.min(Swift.max(1, Int(4_000_000 / perItem)), largestBatch) }
    }
}
