import KapselCoderChecks
import KapselTestJobs
import NIOCore
import Testing
@testable import Kapsel
@testable import KapselSharedMemory
@testable import KapselWire

/// A map batch and its output take the compact coder's fast path; the bytes must be the
/// ones their `Codable` conformances give, and each path must read what the other wrote.
@Suite("Map batch coding")
struct MapBatchCodingTests {
    /// What each path reads from the other's bytes, once the bytes are checked equal.
    func bothWays<Value: Codable>(_ value: Value) throws -> [Value] {
        let paths = try BothPaths(value)
        #expect(paths.fastBytes == paths.codableBytes)
        return [paths.fastFromCodable, paths.codableFromFast]
    }

    @Test func aBatchOfJobsReadsTheSameOnBothPaths() throws {
        let batch = MapBatch(items: [EchoDoubles([1, 2]), EchoDoubles([]), EchoDoubles([3])])
        for decoded in try bothWays(batch) {
            #expect(decoded.items.map(\.values) == [[1, 2], [], [3]])
        }
    }

    @Test func anOutputWithValuesAndFailuresReadsTheSameOnBothPaths() throws {
        let failure = MapItemFailure(errorType: "App.Failure", message: "bad item", location: "a.swift:3")
        let output = MapBatch<EchoDoubles>.Output(outcomes: [.success([1.5]), .failure(failure), .success([])], runNanoseconds: 1234)
        for decoded in try bothWays(output) {
            #expect(decoded.runNanoseconds == 1234)
            guard decoded.outcomes.count == 3, case .success(let first) = decoded.outcomes[0], case .failure(let second) = decoded.outcomes[1],
                  case .success(let third) = decoded.outcomes[2] else {
                Issue.record("the outcomes changed: \(decoded.outcomes)")
                continue
            }
            #expect(first == [1.5] && third == [])
            #expect(second.errorType == failure.errorType && second.message == failure.message && second.location == failure.location)
        }
    }

    /// Outputs in shared memory (a pool's slots, as prefetching on daemons sends) keep
    /// referring to the same memory on both paths.
    @Test func sharedOutputsReadTheSameOnBothPaths() async throws {
        let pool = try SlotPool(slotByteCount: 3 * MemoryLayout<Double>.stride, slotCount: 2)
        var frames: [SharedArray<Double>] = []
        for value in [4.0, 5.0] {
            var frame = try await pool.acquireArray(of: Double.self, count: 3)
            frame.withUnsafeMutableBufferPointer { $0.initialize(repeating: value) }
            frames.append(frame)
        }
        let output = MapBatch<FillSlot>.Output(outcomes: frames.map { .success($0) }, runNanoseconds: 1)
        for decoded in try bothWays(output) {
            let values = decoded.outcomes.map { outcome -> [Double] in
                guard case .success(let frame) = outcome else { return [] }
                return Array(frame)
            }
            #expect(values == [[4, 4, 4], [5, 5, 5]])
        }
    }

    /// A node of another shape goes to the `Codable` path, which says what is wrong.
    @Test func anUnknownOutcomeTagIsTheCodableError() throws {
        let node = CompactValue.map([
            ("outcomes", .array([.array([.int(7), .int(1)])])), ("runNanoseconds", .int(0)),
        ])
        var bytes = ByteBuffer()
        CompactWriter.write(node, into: &bytes)
        #expect {
            try CompactDecoder().decode(MapBatch<EchoDoubles>.Output.self, from: bytes)
        } throws: { error in
            "\(error)".contains("unknown item outcome 7")
        }
    }
}
