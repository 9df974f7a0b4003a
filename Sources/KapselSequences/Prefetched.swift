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
    private let compute: @Sendable (Int) async throws -> Value
    private let state = Mutex(State())

    private struct State {
        var results: [Int: Result<Value, any Error>] = [:]
        var running: Set<Int> = []
        var waiters: [Int: [CheckedContinuation<Result<Value, any Error>, Never>]] = [:]
        /// The next element the in-order consumer takes.
        var cursor = 0
        /// The next element to start ahead of the consumer.
        var ahead = 0
    }

    init(count: Int, workers: Int, buffer: Int, compute: @escaping @Sendable (Int) async throws -> Value) {
        precondition(workers > 0 && buffer > 0, "prefetching needs at least one worker and one buffered element")
        self.count = count
        self.workers = workers
        self.buffer = Swift.max(buffer, workers)
        self.compute = compute
        startAhead()
    }

    /// Element `index`: from the window when it is there (waiting for it if it is being
    /// computed), computed on demand otherwise. Throws the error computing it threw.
    public func element(at index: Int) async throws -> Value {
        precondition(index >= 0 && index < count, "index \(index) out of range 0..<\(count)")
        let known: Bool = state.withLock { $0.results[index] != nil || $0.running.contains(index) }
        guard known else { return try await compute(index) }
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

    /// The element at the cursor, removed from the window; the window moves on.
    private func take() async -> Result<Value, any Error> {
        let index = state.withLock { state in
            defer { state.cursor += 1 }
            return state.cursor
        }
        let result = await wait(for: index)
        state.withLock { state in
            _ = state.results.removeValue(forKey: index)
        }
        startAhead()
        return result
    }

    private func wait(for index: Int) async -> Result<Value, any Error> {
        startAhead(upTo: index)
        return await withCheckedContinuation { continuation in
            let ready: Result<Value, any Error>? = state.withLock { state in
                if let result = state.results[index] { return result }
                state.waiters[index, default: []].append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Starts elements of the window (and `upTo`, when the consumer waits for one
    /// beyond it) while workers are free.
    private func startAhead(upTo wanted: Int? = nil) {
        let starting: [Int] = state.withLock { state in
            var starting: [Int] = []
            if let wanted, state.results[wanted] == nil, !state.running.contains(wanted) {
                state.ahead = Swift.max(state.ahead, wanted + 1)
                state.running.insert(wanted)
                starting.append(wanted)
            }
            while state.running.count < workers, state.ahead < Swift.min(count, state.cursor + buffer) {
                let index = state.ahead
                state.ahead += 1
                if state.results[index] != nil || state.running.contains(index) { continue }
                state.running.insert(index)
                starting.append(index)
            }
            return starting
        }
        for index in starting {
            Task.detached { [self] in
                let result: Result<Value, any Error>
                do {
                    result = .success(try await compute(index))
                } catch {
                    result = .failure(error)
                }
                finished(index, result)
            }
        }
    }

    private func finished(_ index: Int, _ result: Result<Value, any Error>) {
        let waiters: [CheckedContinuation<Result<Value, any Error>, Never>] = state.withLock { state in
            state.running.remove(index)
            // Kept until the in-order consumer takes it (at most `buffer` ahead of it).
            state.results[index] = result
            return state.waiters.removeValue(forKey: index) ?? []
        }
        for waiter in waiters { waiter.resume(returning: result) }
        startAhead()
    }
}

extension LazyIndexed where Element: Sendable {
    /// Computes elements ahead of the consumer on `workers` tasks, keeping at most
    /// `buffer` ready or in progress.
    public func prefetch(workers: Int = 2, buffer: Int = 16) -> Prefetched<Element> {
        let sequence = self
        return Prefetched(count: count, workers: workers, buffer: buffer) { sequence[$0] }
    }
}

extension LazyIndexed {
    /// Computes `transform(element)` ahead of the consumer on `workers` tasks, keeping at
    /// most `buffer` ready or in progress; an element whose transform throws throws the
    /// same error at its place.
    public func prefetch<T: Sendable>(workers: Int = 2, buffer: Int = 16, _ transform: @escaping @Sendable (Element) throws -> T) -> Prefetched<T> {
        let sequence = self
        return Prefetched(count: count, workers: workers, buffer: buffer) { try transform(sequence[$0]) }
    }
}

extension LazyIndexed where Element: Job {
    /// Runs the elements — jobs — in `daemons` ahead of the consumer, `workers` at a time,
    /// keeping at most `buffer` ready or running; yields their outputs in order. A job that
    /// fails (or whose daemon dies) throws its `JobError` at its place; the others go on.
    public func prefetch(on daemons: Daemons, workers: Int? = nil, buffer: Int = 16) -> Prefetched<Element.Output> {
        let sequence = self
        return Prefetched(count: count, workers: workers ?? daemons.count, buffer: buffer) { index in
            try await daemons.submit(sequence[index]).value
        }
    }
}
