import CKapselShim
import Foundation
import Kapsel
import KapselTestJobs
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite("map: order, errors, early stop, progress, memory")
    struct MapTests {
        @Test func resultsComeInInputOrder() async throws {
            try await withTestDaemons(2) { daemons in
                let results = await daemons.map(0..<5000) { Echo($0) }
                #expect(results.count == 5000)
                #expect(try results.enumerated().allSatisfy { try $0.element.get() == $0.offset })
                let values = try await daemons.mapValues(["a", "bb", "ccc"]) { Echo($0.count) }
                #expect(values == [1, 2, 3])
            }
        }

        @Test func eachItemKeepsItsOwnError() async throws {
            try await withTestDaemons(2) { daemons in
                let results = await daemons.map(0..<500) { index in
                    MapStep(index % 7 == 3 ? .fail("item \(index) is bad") : .echo(index))
                }
                for (index, result) in results.enumerated() {
                    switch result {
                    case .success(let report):
                        #expect(index % 7 != 3 && report.value == index)
                    case .failure(let error):
                        #expect(index % 7 == 3)
                        #expect(error.code == .remote && error.message == "item \(index) is bad")
                        #expect(error.location?.contains("MapJobs.swift") == true)
                    }
                }
            }
        }

        @Test func onlyTheItemThatKillsItsDaemonFails() async throws {
            try await withTestDaemons(2) { daemons in
                let results = await daemons.map(0..<400) { index in MapStep(index == 257 ? .crash : .echo(index)) }
                for (index, result) in results.enumerated() {
                    if index == 257 {
                        guard case .failure(let error) = result else {
                            Issue.record("the crashing item succeeded")
                            continue
                        }
                        #expect(error.code == .crashed && error.termination == .signaled(signal: SIGSEGV))
                    } else {
                        let value = try result.get().value
                        #expect(value == index)
                    }
                }
            }
        }

        @Test func aBatchKeepsEachJobsResultAndSplitsWhenOneKillsItsDaemon() async throws {
            try await withTestDaemons(2) { daemons in
                let jobs = (0..<6).map { index in
                    MapStep(index == 2 ? .fail("two") : index == 4 ? .crash : .echo(index))
                }
                let outcome = await withCheckedContinuation { continuation in
                    daemons.submitBatch(jobs).whenResolved { continuation.resume(returning: $0) }
                }
                #expect(outcome.results.count == 6)
                #expect(outcome.runTime == nil, "a batch that had to be split reports no run time")
                for (index, result) in outcome.results.enumerated() {
                    switch index {
                    case 2: #expect(result.error?.code == .remote && result.error?.message == "two")
                    case 4: #expect(result.error?.code == .crashed && result.error?.termination == .signaled(signal: SIGSEGV))
                    default: #expect((try? result.get())?.value == index)
                    }
                }
                let whole = await withCheckedContinuation { continuation in
                    daemons.submitBatch((0..<3).map { MapStep(.echo($0)) }).whenResolved { continuation.resume(returning: $0) }
                }
                #expect(whole.runTime != nil && whole.results.compactMap { try? $0.get().value } == [0, 1, 2])
            }
        }

        @Test func stoppingOnTheFirstErrorCancelsEverythingElse() async throws {
            try await withTestDaemons(2) { daemons in
                let markers = (0..<20).map { temporaryPath("map-marker-\($0)") }
                defer { markers.forEach { unlink($0) } }
                let results = await daemons.map(0..<20, stopOnFirstError: true) { index in
                    MapStep(index == 1 ? .fail("stop here") : .marker(path: markers[index], milliseconds: 1000))
                }
                guard case .failure(let failure) = results[1] else {
                    Issue.record("the failing item succeeded")
                    return
                }
                #expect(failure.message == "stop here")
                #expect(results.enumerated().allSatisfy { index, result in
                    index == 1 || (try? result.get()) == nil
                })
                #expect(results.contains { ($0.error)?.code == .cancelled })
                // Give any job that was not really stopped the time to write its marker.
                try await Task.sleep(for: .milliseconds(1500))
                #expect(markers.allSatisfy { access($0, F_OK) != 0 }, "a cancelled item ran to its end")
                // The pool works on.
                let value = try await daemons.submit(Echo(1)).value
                #expect(value == 1)
            }
        }

        @Test func leavingTheStreamEarlyCancelsWhatIsRunning() async throws {
            try await withTestDaemons(2) { daemons in
                let markers = (0..<6).map { temporaryPath("stream-marker-\($0)") }
                defer { markers.forEach { unlink($0) } }
                let stream = daemons.mapStream(0..<6) { index in
                    MapStep(index == 0 ? .echo(0) : .marker(path: markers[index], milliseconds: 1000))
                }
                for await (index, _) in stream where index == 0 { break }
                try await Task.sleep(for: .milliseconds(1500))
                #expect(markers.allSatisfy { access($0, F_OK) != 0 })
            }
        }

        @Test func completionOrderDeliversShortItemsFirst() async throws {
            try await withTestDaemons(2) { daemons in
                let durations = [600, 20, 20, 20]
                var order: [Int] = []
                for await (index, result) in daemons.mapStream(durations.indices, order: .completion, { index in
                    MapStep(.sleep(milliseconds: durations[index], value: index))
                }) {
                    order.append(index)
                    let value = try result.get().value
                    #expect(value == index)
                }
                #expect(order.count == 4 && order.last == 0)
            }
        }

        @Test func slowItemsGoToTheFirstIdleDaemonNotInChunks() async throws {
            // Durations in units of 40 ms: static chunking (four per daemon) would put both
            // long items on one daemon (10 units) and leave the other with 4.
            let units = [1, 1, 4, 4, 1, 1, 1, 1]
            try await withTestDaemons(2) { daemons in
                let results = await daemons.map(units.indices) { index in MapStep(.sleep(milliseconds: units[index] * 40, value: index)) }
                let placed = try results.map { try $0.get().daemonIndex }
                #expect(placed[2] != placed[3], "the two long items ran on the same daemon: \(placed)")
                let load = Dictionary(grouping: units.indices, by: { placed[$0] }).mapValues { $0.reduce(0) { $0 + units[$1] } }
                #expect(load.values.allSatisfy { $0 <= 7 }, "per-daemon work \(load)")
            }
        }

        @Test func progressIsRedrawnInPlaceOnATerminalAndPrintedAsLinesElsewhere() async throws {
            var master: Int32 = -1
            var terminal: Int32 = -1
            #expect(kapsel_open_pseudo_terminal(&master, &terminal) == 0)
            var pipeEnds: [Int32] = [0, 0]
            #expect(pipe(&pipeEnds) == 0)
            defer { [master, terminal, pipeEnds[0], pipeEnds[1]].forEach { close($0) } }
            let updates = ProgressRecorder()
            try await withTestDaemons(2) { daemons in
                for descriptor in [terminal, pipeEnds[1]] {
                    var options = MapOptions()
                    options.progressDescriptor = descriptor
                    options.progressHandler = { updates.record($0) }
                    let results = await daemons.map(0..<120, progress: true, options: options) { MapStep(.sleep(milliseconds: 5, value: $0)) }
                    #expect(results.allSatisfy { (try? $0.get()) != nil })
                }
            }
            let onTerminal = readAvailable(master)
            #expect(onTerminal.contains("\r\u{1B}[2K["), "no in-place redraw: \(onTerminal.debugDescription)")
            #expect(onTerminal.contains("120/120 100%") && onTerminal.unicodeScalars.last == "\n")
            close(pipeEnds[1])
            pipeEnds[1] = -1
            let onPipe = readAvailable(pipeEnds[0])
            #expect(!onPipe.contains("\r"))
            #expect(onPipe.split(separator: "\n").last.map(String.init)?.contains("120/120 100%") == true)
            #expect(updates.last?.completed == 120 && updates.last?.total == 120)
        }

        @Test func hostMemoryDoesNotGrowWithTheNumberOfItems() throws {
            func run(_ count: Int) throws -> (sum: Int, peakKB: Int) {
                let outcome = try runProcess(testDaemonPath, arguments: ["map-memory", String(count)], environment: ["PATH": "/usr/bin:/bin"], timeout: 300)
                #expect(outcome.status == 0, "\(outcome.output)")
                let lines = outcome.output.split(separator: "\n")
                let sum = lines.first { $0.hasPrefix("sum ") }.flatMap { Int($0.dropFirst(4)) } ?? -1
                let peak = lines.first { $0.hasPrefix("peak ") }.flatMap { Int($0.dropFirst(5)) } ?? -1
                return (sum, peak)
            }
            let small = try run(50_000)
            let large = try run(200_000)
            #expect(small.sum == 49_999 * 50_000 / 2)
            #expect(large.sum == 199_999 * 200_000 / 2)
            #expect(Double(large.peakKB) < 1.1 * Double(small.peakKB), "peak \(small.peakKB) kB for 50k items, \(large.peakKB) kB for 200k")
        }
    }
}

/// Progress updates seen by a handler.
final class ProgressRecorder: Sendable {
    private let updates = Mutex<[MapProgress]>([])
    func record(_ progress: MapProgress) { updates.withLock { $0.append(progress) } }
    var last: MapProgress? { updates.withLock { $0.last } }
}

/// What can be read from `descriptor` right now.
func readAvailable(_ descriptor: Int32) -> String {
    _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(descriptor, &buffer, buffer.count)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
