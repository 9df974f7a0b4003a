import Foundation
import Synchronization
import Testing
@testable import KapselSequences

struct BadItem: Error, Equatable {
    let index: Int
}

/// Records which elements were started, to see how far ahead prefetching goes.
final class StartLog: Sendable {
    private let started = Mutex<[Int]>([])
    func note(_ index: Int) { started.withLock { $0.append(index) } }
    var maximum: Int { started.withLock { $0.max() ?? -1 } }
    var all: [Int] { started.withLock { $0 } }
}

@Suite("Prefetching on threads")
struct PrefetchTests {
    @Test func elementsArriveInOrderWhateverTheyCost() async throws {
        let sequence = LazyIndexed(count: 40) { index -> Int in
            usleep(UInt32((40 - index) % 7) * 1000)
            return index * index
        }
        var seen: [Int] = []
        for try await value in sequence.prefetch(workers: 4, buffer: 8) { seen.append(value) }
        #expect(seen == (0..<40).map { $0 * $0 })
    }

    @Test func noMoreThanTheBufferIsComputedAhead() async throws {
        let log = StartLog()
        let prefetched = LazyIndexed(count: 100) { index -> Int in
            log.note(index)
            return index
        }.prefetch(workers: 2, buffer: 5)
        var iterator = prefetched.makeAsyncIterator()
        for expected in 0..<10 {
            let value = try await iterator.next()
            #expect(value == expected)
            try await Task.sleep(for: .milliseconds(5))
            // Consumed `expected + 1` elements: the window reaches at most 5 beyond them.
            #expect(log.maximum < expected + 1 + 5)
        }
    }

    @Test func randomAccessWorksInAndOutOfTheWindow() async throws {
        let prefetched = LazyIndexed(count: 1000) { $0 * 3 }.prefetch(workers: 2, buffer: 4)
        #expect(try await prefetched.element(at: 999) == 2997)
        #expect(try await prefetched.element(at: 2) == 6)
        var iterator = prefetched.makeAsyncIterator()
        #expect(try await iterator.next() == 0)
        #expect(try await iterator.next() == 3)
    }

    @Test func aFailingElementThrowsItsOwnErrorAtItsPlaceAndTheRestFollows() async throws {
        let prefetched = LazyIndexed(count: 6).prefetch(workers: 2, buffer: 3) { (index: Int) throws -> Int in
            if index == 2 { throw BadItem(index: index) }
            return index
        }
        var iterator = prefetched.makeAsyncIterator()
        #expect(try await iterator.next() == 0)
        #expect(try await iterator.next() == 1)
        await #expect(throws: BadItem(index: 2)) { try await iterator.next() }
        #expect(try await iterator.next() == 3)

        var collected: [String] = []
        let failingOne = LazyIndexed(count: 4).prefetch(workers: 2) { (index: Int) throws -> Int in
            if index == 1 { throw BadItem(index: 1) }
            return index
        }
        for await result in failingOne.results {
            collected.append((try? result.get()).map(String.init) ?? "error")
        }
        #expect(collected == ["0", "error", "2", "3"])
    }
}

extension LazyIndexed where Element == Int {
    /// 0, 1, 2, ... `count - 1`.
    init(count: Int) {
        self.init(count: count) { $0 }
    }
}
