import Synchronization
import Testing
@testable import KapselSequences

/// Counts how often elements are computed.
final class Evaluations: Sendable {
    private let counts = Mutex<[Int: Int]>([:])
    func note(_ index: Int) { counts.withLock { $0[index, default: 0] += 1 } }
    var total: Int { counts.withLock { $0.values.reduce(0, +) } }
    var indices: Set<Int> { counts.withLock { Set($0.keys) } }
}

@Suite("Lazy indexed sequences")
struct LazyIndexedTests {
    func counted(_ count: Int, _ evaluations: Evaluations) -> LazyIndexed<Int> {
        LazyIndexed(count: count) { index in
            evaluations.note(index)
            return index
        }
    }

    @Test func transformsGiveWhatTheirEagerTwinsGive() {
        let numbers = LazyIndexed(Array(0..<10))
        #expect(Array(numbers.map { $0 * 2 }) == (0..<10).map { $0 * 2 })
        #expect(numbers.zip(LazyIndexed(["a", "b", "c"])).map { "\($0.0)\($0.1)" } == ["0a", "1b", "2c"])
        #expect(Array(numbers.slice(2..<5).concatenated(LazyIndexed([Int]()), numbers.slice(8..<10))) == [2, 3, 4, 8, 9])
        #expect(Array(numbers.slice(from: 1, to: 10, by: 3)) == [1, 4, 7])
        #expect(Array(numbers.batched(size: 4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        #expect(Array(numbers.batched(size: 4, dropPartial: true)) == [[0, 1, 2, 3], [4, 5, 6, 7]])
        #expect(Array(numbers.batched(size: 4).unbatched(batchSize: 4, lastBatchSize: 2)) == Array(0..<10))
        #expect(Array(numbers.slice(0..<3).repeated(times: 2)) == [0, 1, 2, 0, 1, 2])
        #expect(Array(numbers.slice(0..<3).cycled(toCount: 7)) == [0, 1, 2, 0, 1, 2, 0])
        #expect(Array(LazyIndexed.repeating("x", count: 3)) == ["x", "x", "x"])
        #expect(numbers.reversed().first == 9)
    }

    @Test func nothingIsComputedUntilItIsRead() {
        let evaluations = Evaluations()
        let pipeline = counted(1000, evaluations).map { $0 + 1 }.zip(counted(1000, evaluations)).slice(from: 10, to: 1000, by: 10).batched(size: 8)
        #expect(evaluations.total == 0)
        #expect(pipeline.count == 13)
        let batch = pipeline[3]
        #expect(batch.map(\.0) == (24..<32).map { 10 + $0 * 10 + 1 })
        // Exactly the 8 elements of that batch, from each side of the zip.
        #expect(evaluations.total == 16)
        #expect(evaluations.indices == Set((24..<32).map { 10 + $0 * 10 }))
    }

    @Test func unbatchingComputesOnlyTheBatchHoldingTheElement() {
        let evaluations = Evaluations()
        let batches = LazyIndexed(count: 100) { batch in
            evaluations.note(batch)
            return Array(batch * 10..<batch * 10 + 10)
        }
        let flat = batches.unbatched(batchSize: 10)
        #expect(flat.count == 1000)
        #expect(flat[537] == 537)
        #expect(evaluations.indices == [53])
    }
}
