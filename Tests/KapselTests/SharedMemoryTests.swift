import Foundation
import Kapsel
import KapselArrow
import KapselTestJobs
import KapselWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite("Shared memory between host and daemons")
    struct SharedMemoryTests {
        static func devShmEntries() -> Set<String> {
            Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
        }

        @Test func aGibibyteGoesToADaemonAndANewOneComesBackWithoutCopies() async throws {
            let shmBefore = Self.devShmEntries()
            let hostBaseline = MemoryUsage.current()
            try await withTestDaemons(1) { daemons in
                let daemonBaseline = try await daemons.submit(DaemonMemory()).value
                do {
                    let count = (1 << 30) / 8
                    let input = try SharedArray<Double>(count: count) { values in
                        for index in values.indices { values[index] = Double(index & 1023) }
                    }
                    let output = try await daemons.submit(SumAndDouble(input: input)).value
                    #expect(output.sum == 523_776 * Double(count / 1024))
                    // The daemon read 1 GiB and wrote 1 GiB: its private memory barely moved.
                    #expect(output.anonymousGrowthKB < 64 << 10, "daemon RssAnon grew by \(output.anonymousGrowthKB) kB")
                    #expect(output.doubled.count == count)
                    var mismatches = 0
                    output.doubled.withUnsafeBufferPointer { values in
                        for index in stride(from: 0, to: values.count, by: 4093) where values[index] != 2 * Double(index & 1023) {
                            mismatches += 1
                        }
                    }
                    #expect(mismatches == 0)
                    #expect(output.doubled.isReadOnly)
                    // Neither side keeps a private copy of either gibibyte.
                    #expect(MemoryUsage.current().residentAnonymousKB - hostBaseline.residentAnonymousKB < 256 << 10)
                    let during = try await daemons.submit(DaemonMemory()).value
                    #expect(during.residentSharedKB - daemonBaseline.residentSharedKB < 64 << 10, "the daemon unmapped both arrays after the job")
                }
                // Both sides dropped their references: the memory is gone.
                let daemonAfter = try await daemons.submit(DaemonMemory()).value
                #expect(daemonAfter.residentSharedKB - daemonBaseline.residentSharedKB < 16 << 10)
                #expect(MemoryUsage.current().residentSharedKB - hostBaseline.residentSharedKB < 64 << 10)
            }
            #expect(Self.devShmEntries() == shmBefore)
        }

        @Test func aDaemonKilledWhileHoldingThreeSegmentsLeaksNothing() async throws {
            try await withTestDaemons(1) { daemons in
                _ = try await daemons.submit(Echo(0)).value
                let baseline = MemoryUsage.current()
                let pid = daemons.status().daemons[0].pid!
                do {
                    let arrays = try (0..<3).map { _ in try SharedArray<Double>(repeating: 1, count: 8 << 20) }
                    let holding = daemons.submit(HoldShared(arrays: arrays, milliseconds: 60_000))
                    #expect(await eventually { (MemoryUsage.of(processID: pid)?.residentSharedKB ?? 0) >= 190 << 10 })
                    kill(pid, SIGKILL)
                    guard case .failure(let error) = await holding.result else {
                        Issue.record("the job survived its daemon")
                        return
                    }
                    #expect(error.termination == .signaled(signal: SIGKILL))
                }
                #expect(await eventually { daemons.status().daemons[0].online })
                // Shared memory is back to where it was (descriptors are counted in
                // LifecycleTests' leak check, in a process of its own).
                #expect(MemoryUsage.current().residentSharedKB - baseline.residentSharedKB < 32 << 10)
            }
        }

        @Test(arguments: [SharedTensor<Double>.Layout.columnMajor, .rowMajor])
        func aTensorArrivesInItsLayoutWithItsStrides(layout: SharedTensor<Double>.Layout) async throws {
            try await withTestDaemons(1) { daemons in
                var tensor = try SharedTensor<Double>(shape: [3, 4], layout: layout)
                for row in 0..<3 { for column in 0..<4 { tensor[row, column] = Double(row * 10 + column) } }
                let report = try await daemons.submit(EchoTensor(tensor)).value
                #expect(report.strides == tensor.strides)
                #expect(report.layout == layout)
                #expect(report.element == 12)
                #expect(report.tensor.strides == tensor.strides && report.tensor.shape == [3, 4])
                for row in 0..<3 { for column in 0..<4 { #expect(report.tensor[row, column] == tensor[row, column]) } }

                let made = try await daemons.submit(MakeTensor(rows: 2, columns: 5, layout: layout)).value
                #expect(made.layout == layout && made.strides == SharedTensor<Double>.contiguousStrides([2, 5], layout))
                #expect(made[1, 4] == 104)
            }
        }

        @Test func largePlainArraysTravelAsSharedMemory() async throws {
            // Frames from daemons may not exceed 64 KiB here: a 1 MB array can only come
            // back as shared memory.
            let values = (0..<131_072).map(Double.init)
            try await withTestDaemons(1, configure: {
                $0.limits = WireLimits(maxFrameLength: 64 << 10)
                $0.largeArrayThreshold = 16 << 10
            }) { daemons in
                let back = try await daemons.submit(EchoDoubles(values)).value
                #expect(back == values.map { $0 + 1 })
                let small = try await daemons.submit(EchoDoubles([1, 2])).value
                #expect(small == [2, 3])
            }
            try await withTestDaemons(1, configure: {
                $0.limits = WireLimits(maxFrameLength: 64 << 10)
                $0.largeArrayThreshold = .max
            }) { daemons in
                // Sent inline, the job's frame is over the limit the daemon applies too: the
                // daemon refuses the frame and leaves; the job says why.
                guard case .failure(let error) = await daemons.submit(EchoDoubles(values)).result else {
                    Issue.record("a 1 MB frame passed a 64 KiB limit")
                    return
                }
                #expect(error.code == .crashed)
                #expect(error.termination == .exited(code: DaemonExitCode.protocolError.rawValue))
                #expect(error.message.contains("protocol error"))
                #expect(error.daemonOutput?.contains("exceeds the limit of 65536 bytes") == true)
            }
        }

        @Test func aPoolSlotLentToTheHostComesBackWhenTheHostDropsIt() async throws {
            try await withTestDaemons(1) { daemons in
                _ = await daemons.everywhere(CreatePool(slots: 2, count: 1000))
                for value in 0..<20 {
                    let array = try await daemons.submit(FillSlot(Double(value))).value
                    #expect(array.allSatisfy { $0 == Double(value) })
                }
                // Hold both slots: the daemon cannot fill a third.
                let first = try await daemons.submit(FillSlot(1)).value
                var second: SharedArray<Double>? = try await daemons.submit(FillSlot(2)).value
                guard case .failure(let exhausted) = await daemons.submit(FillSlot(3)).result else {
                    Issue.record("a slot was reused while the host still held it")
                    return
                }
                #expect(exhausted.message == "pool exhausted")
                second = nil
                let third = try await daemons.submit(FillSlot(3)).value
                #expect(third.allSatisfy { $0 == 3 })
                // The slot still held never changed.
                #expect(first.allSatisfy { $0 == 1 })
                withExtendedLifetime(second) {}
            }
        }

        /// The host keeps the daemon's slots mapped between loans, and lets them go when the
        /// daemon's pool goes.
        @Test func theHostKeepsADaemonsSlotsUntilTheirPoolGoes() async throws {
            try await withTestDaemons(1) { daemons in
                _ = await daemons.everywhere(CreatePool(slots: 2, count: 1000))
                var files: Set<UInt64> = []
                for value in 0..<6 {
                    let array = try await daemons.submit(FillSlot(Double(value))).value
                    #expect(array.allSatisfy { $0 == Double(value) })
                    files.insert(try inode(of: array.buffer.storage.segment.descriptor))
                }
                #expect(files.count == 2, "two slots, lent again and again")
                #expect(sharedMemoryInThisProcess().isSuperset(of: files), "kept between loans")
                // A new pool replaces the old one in the daemon: the old one goes.
                _ = await daemons.everywhere(CreatePool(slots: 2, count: 1000))
                #expect(await eventually { sharedMemoryInThisProcess().isDisjoint(with: files) }, "the host still holds the old pool's memory")
            }
        }

        /// A slot's token waits to travel with the host's next message; a daemon whose
        /// job waits for the slot asks for it, and gets it as soon as the host drops it
        /// though the host sends nothing else.
        @Test func aDaemonWaitingForASlotGetsItWhenTheHostDropsIt() async throws {
            try await withTestDaemons(1) { daemons in
                _ = await daemons.everywhere(CreatePool(slots: 1, count: 1000))
                var held: SharedArray<Double>? = try await daemons.submit(FillSlot(1)).value
                let waiting = daemons.submit(FillSlotWhenFree(2), timeout: .seconds(10))
                try await Task.sleep(for: .milliseconds(100))
                #expect(!waiting.isResolved, "the job got the slot the host still holds")
                #expect(held?.allSatisfy { $0 == 1 } == true)
                held = nil
                let second = try await waiting.value
                #expect(second.allSatisfy { $0 == 2 })
            }
        }

        @Test func sharedMemoryCrossesEverywhereAndRetries() async throws {
            try await withTestDaemons(1) { daemons in
                let data = try SharedArray<Double>(repeating: 2, count: 1000)
                let marker = temporaryPath("crash-once-shm")
                defer { unlink(marker) }
                // Crashes once holding the array; the retry sends it again to the replacement.
                let crashedFirst = daemons.submit(CrashOnceWith(data: data, markerPath: marker), retries: 1)
                #expect(try await crashedFirst.value == 2000)
            }
        }
    }
}

extension ProcessTests {
    @Suite("Shared memory lifetime in one process")
    struct SharedMemoryLifetimeTests {
        @Test func memoryGoesWhenTheLastViewGoes() throws {
            let baseline = MemoryUsage.current().residentSharedKB
            do {
                let array = try SharedArray<UInt8>(repeating: 1, count: 256 << 20)
                #expect(MemoryUsage.current().residentSharedKB - baseline >= 200 << 10)
                let view = array
                withExtendedLifetime(view) {}
            }
            #expect(MemoryUsage.current().residentSharedKB - baseline < 32 << 10)
        }
    }
}

extension ProcessTests {
    @Suite("Arrow against PyArrow")
    struct ArrowInteropTests {
        @Test func pyArrowReadsOurExportsAndWeReadItsExports() throws {
            let library = URL(fileURLWithPath: testDaemonPath).deletingLastPathComponent().appendingPathComponent("libKapselArrowInterop.so").path
            let script = ReadmeTests.root.appendingPathComponent("Tests/Python/arrow_interop.py").path
            let outcome = try runProcess("/usr/bin/env", arguments: ["python3", script, library], environment: ProcessInfo.processInfo.environment, timeout: 120)
            #expect(outcome.status == 0, "PyArrow check failed (pyarrow is installed by .ci/run: python3 -m pip install pyarrow):\n\(outcome.output)")
            #expect(outcome.output.contains("ok"))
        }
    }
}

extension ProcessTests {
    @Suite("Arrow tables between host and daemons")
    struct SharedTableTests {
        @Test func aTableCrossesToADaemonAndBackWithoutCopies() async throws {
            try await withTestDaemons(1) { daemons in
                let table = try SharedTable([
                    .primitive("price", [1.5, nil, 3.0, 4.5]),
                    .utf8("name", ["a", "b", nil, "d"]),
                ])
                let output = try await daemons.submit(SummarizeTable(table: table, column: "price")).value
                #expect(output.sum == 9 && output.nulls == 1)
                #expect(output.zeroCopy)
                let doubled = try #require(output.table["doubled"])
                #expect((0..<4).map { doubled.value($0, as: Double.self) } == [3, nil, 6, 9])
                #expect((0..<4).map { output.table["name"]!.string($0) } == ["a", "b", nil, "d"])
                #expect(output.table["price"]!.isSharedMemory)
            }
        }
    }
}

/// The inode of the shared memory file behind `descriptor`.
func inode(of descriptor: Int32) throws -> UInt64 {
    var info = stat()
    try #require(fstat(descriptor, &info) == 0)
    return UInt64(info.st_ino)
}

/// Inodes of the Kapsel shared memory files this process holds open or mapped.
func sharedMemoryInThisProcess() -> Set<UInt64> {
    var inodes: Set<UInt64> = []
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
        let path = "/proc/self/fd/\(name)"
        var info = stat()
        guard (try? FileManager.default.destinationOfSymbolicLink(atPath: path))?.contains("memfd:kapsel") == true,
              stat(path, &info) == 0 else { continue }
        inodes.insert(UInt64(info.st_ino))
    }
    let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
    for line in maps.split(separator: "\n") where line.contains("memfd:kapsel") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if fields.count > 4, let inode = UInt64(fields[4]) { inodes.insert(inode) }
    }
    return inodes
}
