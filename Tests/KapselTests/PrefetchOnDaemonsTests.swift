import Kapsel
import KapselSequences
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite("prefetch on daemons: order, random access, errors, crashes, pool slots")
    struct PrefetchOnDaemonsTests {
        @Test func itemsArriveInOrderWhateverTheyCost() async throws {
            try await withTestDaemons(2) { daemons in
                let durations = [40, 1, 1, 30, 1, 1, 1, 20, 1, 1]
                let frames = LazyIndexed(count: 60) { index in
                    MapStep(.sleep(milliseconds: durations[index % durations.count], value: index))
                }.prefetch(on: daemons, buffer: 8)
                var seen: [Int] = []
                for try await report in frames { seen.append(report.value) }
                #expect(seen == Array(0..<60))
            }
        }

        @Test func randomAccessWorksBeforeAndDuringIteration() async throws {
            try await withTestDaemons(2) { daemons in
                let items = LazyIndexed(count: 200) { MapStep(.echo($0 * 3)) }.prefetch(on: daemons, buffer: 4)
                let far = try await items.element(at: 150)
                #expect(far.value == 450)
                var iterator = items.makeAsyncIterator()
                let head = try await iterator.next()
                let inWindow = try await items.element(at: 2)
                let last = try await items.element(at: 199)
                let next = try await iterator.next()
                #expect(head?.value == 0 && inWindow.value == 6 && last.value == 597 && next?.value == 3)
            }
        }

        @Test func aFailingItemThrowsItsErrorAtItsPlaceAndTheRestFollow() async throws {
            try await withTestDaemons(2) { daemons in
                let items = LazyIndexed(count: 12) { index in
                    MapStep(index == 4 ? .fail("item 4 is bad") : .echo(index))
                }.prefetch(on: daemons, buffer: 6)
                var iterator = items.makeAsyncIterator()
                for expected in 0..<4 {
                    let report = try await iterator.next()
                    #expect(report?.value == expected)
                }
                do {
                    _ = try await iterator.next()
                    Issue.record("item 4 did not fail")
                } catch let error as JobError {
                    #expect(error.code == .remote && error.message == "item 4 is bad")
                }
                for expected in 5..<12 {
                    let report = try await iterator.next()
                    #expect(report?.value == expected)
                }
                let end = try await iterator.next()
                #expect(end == nil)
            }
        }

        @Test func aCrashSurfacesAtItsItemAndPrefetchingGoesOn() async throws {
            try await withTestDaemons(2) { daemons in
                let items = LazyIndexed(count: 30) { index in
                    MapStep(index == 9 ? .crash : .sleep(milliseconds: 2, value: index))
                }.prefetch(on: daemons, buffer: 8)
                var index = 0
                for await result in items.results {
                    if index == 9 {
                        let error = result.error as? JobError
                        #expect(error?.code == .crashed && error?.termination == .signaled(signal: SIGSEGV))
                    } else {
                        let report = try result.get()
                        #expect(report.value == index)
                    }
                    index += 1
                }
                #expect(index == 30)
            }
        }

        @Test func poolSlotsComeBackOnlyWhenTheConsumerDropsThem() async throws {
            try await withTestDaemons(2) { daemons in
                let count = 100_000
                let frames = LazyIndexed(count: 80) { PoolFrame(Double($0), count: count, slots: 8) }
                    .prefetch(on: daemons, buffer: 4)
                var iterator = frames.makeAsyncIterator()
                let first = try #require(try await iterator.next())
                var read = 1
                while let frame = try await iterator.next() {
                    #expect(frame.count == count && frame.first == Double(read) && frame.last == Double(read))
                    read += 1
                }
                #expect(read == 80)
                // 80 frames went through 16 slots while the first stayed in use: its slot
                // was never handed out again.
                #expect(first.allSatisfy { $0 == 0 })
            }
        }
    }
}
