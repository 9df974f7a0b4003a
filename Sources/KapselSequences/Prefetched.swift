import Kapsel
import Synchronization

/// A sequence whose next elements are computed ahead, by several workers, while the
/// consumer reads them in order.
///
/// ```swift
/// let items = LazyIndexed(count: 10_000) { Render(frame: $0) }
///     .prefetch(on: daemons, workers: 4, buffer: 16)
/// for try await frame in items { show(frame) }
/// ```
///
/// At most `buffer` elements ahead of the consumer are computed or kept, `workers` at a
/// time. An element that fails throws at its place, with the original error; the
/// iteration can go on after it (`results`, or calling `next()` again). Random access
/// (`element(at:)`) works too: an element outside the window is computed on demand. A
/// consumed element is no longer held here, so memory it refers to (a pool slot, say)
/// is freed as soon as the consumer drops it.
public final class Prefetched<Value: Sendable>: AsyncSequence, Sendable {
    public typealias Element = Value
    public typealias Failure = any Error

    /// Number of elements.
    public let count: Int
    private let workers: Int
    private let buffer: Int
    private let source: any ElementSource<Value>
    private let state = Mutex(State())

    private struct State {
        var results: [Int: Result<Value, any Error>] = [:]
        var running: Set<Int> = []
        var waiters: [Int: [CheckedContinuation<Result<Value, any Error>, Never>]] = [:]
        /// The next element the in-order consumer takes.
        var cursor = 0
        /// The next element to start ahead of the consumer.
        var ahead = 0

        /// Marks what starts now as running and returns it: `wanted` when the consumer
        /// waits for an element beyond the window, then chunks of the window of up to
        /// `chunkSize` consecutive elements while workers are free.
        mutating func claimStarts(wanted: Int?, count: Int, buffer: Int, workers: Int, chunkSize: Int) -> [Range<Int>] {
            var starting: [Range<Int>] = []
            if let wanted, results[wanted] == nil, !running.contains(wanted) {
                running.insert(wanted)
                starting.append(wanted..<(wanted + 1))
            }
            // A chunk starts only once it fits whole (or ends the sequence), so that
            // elements consumed one by one do not shrink the chunks to single elements.
            while true {
                let limit = Swift.min(count, cursor + buffer)
                while ahead < limit, results[ahead] != nil || running.contains(ahead) {
                    ahead += 1
                }
                let room = Swift.min(workers - running.count, limit - ahead)
                guard room >= chunkSize || (room > 0 && limit == count) else { break }
                let first = ahead
                var end = first
                while end < first + Swift.min(room, chunkSize), results[end] == nil, !running.contains(end) {
                    running.insert(end)
                    end += 1
                }
                starting.append(first..<end)
                ahead = end
            }
            return starting
        }
    }

    init(count: Int, workers: Int, buffer: Int, source: some ElementSource<Value>) {
        precondition(workers > 0 && buffer > 0, "prefetching needs at least one worker and one buffered element")
        self.count = count
        self.workers = workers
        self.buffer = Swift.max(buffer, workers)
        self.source = source
        startAhead()
    }

    /// Element `index`: from the window when it is there (waiting for it if it is being
    /// computed), computed on demand otherwise. Throws the error computing it threw.
    public func element(at index: Int) async throws -> Value {
        precondition(index >= 0 && index < count, "index \(index) out of range 0..<\(count)")
        let known: Bool = state.withLock { $0.results[index] != nil || $0.running.contains(index) }
        guard known else {
            return try await withCheckedContinuation { continuation in
                source.start(index..<(index + 1)) { continuation.resume(returning: $1[0]) }
            }.get()
        }
        return try await wait(for: index).get()
    }

    /// The elements in order, each as a `Result`: the sequence goes on past failures.
    public var results: AsyncMapSequence<AsyncStream<Int>, Result<Value, any Error>> {
        let (indices, continuation) = AsyncStream<Int>.makeStream()
        for index in 0..<count { continuation.yield(index) }
        continuation.finish()
        return indices.map { [self] _ in await self.take() }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(owner: self)
    }

    /// Delivers elements in order; throws at an element that failed, and can be asked
    /// for the next element after that.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let owner: Prefetched

        public mutating func next() async throws -> Value? {
            guard !owner.isFinished else { return nil }
            return try await owner.take().get()
        }
    }

    private var isFinished: Bool {
        state.withLock { $0.cursor >= count }
    }

    /// The element at the cursor, removed from the window; the window moves on. An
    /// element already computed is taken in one pass under the lock, without suspending.
    private func take() async -> Result<Value, any Error> {
        let chunkSize = self.chunkSize
        let (index, ready, starting) = state.withLock { state -> (Int, Result<Value, any Error>?, [Range<Int>]) in
            let index = state.cursor
            state.cursor += 1
            guard let ready = state.results.removeValue(forKey: index) else { return (index, nil, []) }
            return (index, ready, claimStarts(in: &state, chunkSize: chunkSize))
        }
        if let ready {
            start(starting)
            return ready
        }
        let result = await wait(for: index)
        start(state.withLock { state in
            _ = state.results.removeValue(forKey: index)
            return claimStarts(in: &state, chunkSize: chunkSize)
        })
        return result
    }

    private func wait(for index: Int) async -> Result<Value, any Error> {
        let chunkSize = self.chunkSize
        start(state.withLock { claimStarts(in: &$0, wanted: index, chunkSize: chunkSize) })
        return await withCheckedContinuation { continuation in
            let ready: Result<Value, any Error>? = state.withLock { state in
                if let result = state.results[index] { return result }
                state.waiters[index, default: []].append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// What starts now, claimed in `state` (see `State.claimStarts`), for this sequence's
    /// size, window and workers.
    private func claimStarts(in state: inout State, wanted: Int? = nil, chunkSize: Int) -> [Range<Int>] {
        state.claimStarts(wanted: wanted, count: count, buffer: buffer, workers: workers, chunkSize: chunkSize)
    }

    /// How many consecutive elements start together.
    private var chunkSize: Int {
        Swift.max(1, Swift.min(source.chunkSize, buffer, workers))
    }

    /// Starts elements of the window while workers are free.
    private func startAhead() {
        let chunkSize = self.chunkSize
        start(state.withLock { claimStarts(in: &$0, chunkSize: chunkSize) })
    }

    private func start(_ chunks: [Range<Int>]) {
        for indices in chunks {
            source.start(indices) { [self] first, results in finished(from: first, results) }
        }
    }

    /// Consecutive elements from `first` on are computed: they are kept for the consumer
    /// (and handed to whoever waits for them), and the window moves on, in one pass
    /// under the lock whatever their number.
    private func finished(from first: Int, _ results: [Result<Value, any Error>]) {
        let chunkSize = self.chunkSize
        let (resumed, starting) = state.withLock { state in
            var resumed: [(CheckedContinuation<Result<Value, any Error>, Never>, Result<Value, any Error>)] = []
            for (index, result) in zip(first..., results) {
                state.running.remove(index)
                // Kept until the in-order consumer takes it (at most `buffer` ahead of it).
                state.results[index] = result
                for waiter in state.waiters.removeValue(forKey: index) ?? [] { resumed.append((waiter, result)) }
            }
            return (resumed, claimStarts(in: &state, chunkSize: chunkSize))
        }
        for (waiter, result) in resumed { waiter.resume(returning: result) }
        start(starting)
    }
}

extension LazyIndexed where Element: Sendable {
    /// Computes elements ahead of the consumer on `workers` tasks, keeping at most
    /// `buffer` ready or in progress.
    public func prefetch(workers: Int = 2, buffer: Int = 16) -> Prefetched<Element> {
        let sequence = self
        return Prefetched(count: count, workers: workers, buffer: buffer, source: TaskSource { sequence[$0] })
    }
}

extension LazyIndexed {
    /// Computes `transform(element)` ahead of the consumer on `workers` tasks, keeping at
    /// most `buffer` ready or in progress; an element whose transform throws throws the
    /// same error at its place.
    public func prefetch<T: Sendable>(workers: Int = 2, buffer: Int = 16, _ transform: @escaping @Sendable (Element) throws -> T) -> Prefetched<T> {
        let sequence = self
        return Prefetched(count: count, workers: workers, buffer: buffer, source: TaskSource { try transform(sequence[$0]) })
    }
}

extension LazyIndexed where Element: Job {
    /// Runs the elements — jobs — in `daemons` ahead of the consumer, keeping at most
    /// `buffer` ready or submitted, and yields their outputs in order.
    ///
    /// Consecutive jobs go in batches of `batchSize` (by default sized from how long they
    /// take, for about 4 ms each, at most `buffer` ÷ (2 × daemons)): one round trip per
    /// batch, and since submitted batches wait in the dispatcher's queue, a daemon starts
    /// its next batch the moment it is free. `workers` lowers how many jobs are submitted
    /// at once below `buffer`. A job that fails (or whose daemon dies) throws its
    /// `JobError` at its place; the others go on.
    public func prefetch(on daemons: Daemons, workers: Int? = nil, buffer: Int = 16, batchSize: Int? = nil) -> Prefetched<Element.Output> {
        precondition(batchSize.map { $0 > 0 } ?? true, "a batch holds at least one job")
        let source = DaemonSource(jobs: self, daemons: daemons, buffer: buffer, batchSize: batchSize)
        return Prefetched(count: count, workers: workers ?? buffer, buffer: buffer, source: source)
    }
}
