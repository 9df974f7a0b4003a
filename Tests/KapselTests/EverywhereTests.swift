import Kapsel
import KapselTestJobs
import Testing

extension ProcessTests {
    @Suite("everywhere")
    struct EverywhereTests {
        @Test func setupRunsOnEveryDaemonAndOnReplacements() async throws {
            try await withTestDaemons(2) { daemons in
                let results = await daemons.everywhere(StoreSetting(key: "model", value: "v1"))
                #expect(results.count == 2)
                let pids = try results.map { try $0.get() }
                #expect(Set(pids) == Set(daemons.status().daemons.compactMap(\.pid)))

                // Both daemons hold the setting: two slow reads run side by side.
                let reads = (0..<2).map { _ in daemons.submit(ReadSettingSlowly(key: "model", milliseconds: 200)) }
                var seen: Set<Int> = []
                for read in reads {
                    let (value, whereabouts) = try await read.value.pair
                    #expect(value == "v1")
                    seen.insert(whereabouts.daemonIndex)
                }
                #expect(seen == [0, 1])

                // Crash one daemon: its replacement runs the setup before any job.
                _ = await daemons.submit(Crash(.segfault, in: .running)).result
                let again = (0..<2).map { _ in daemons.submit(ReadSettingSlowly(key: "model", milliseconds: 200)) }
                var instances: [Int] = []
                for read in again {
                    let (value, whereabouts) = try await read.value.pair
                    #expect(value == "v1")
                    instances.append(whereabouts.instance)
                }
                #expect(instances.sorted() == [1, 2])
            }
        }

        @Test func setupResultsReportErrorsPerDaemon() async throws {
            try await withTestDaemons(2) { daemons in
                let results = await daemons.everywhere(Fail("no model file"))
                #expect(results.count == 2)
                for result in results {
                    guard case .failure(let error) = result else {
                        Issue.record("expected the setup to fail")
                        continue
                    }
                    #expect(error.message == "no model file")
                }
                let value = try await daemons.submit(Echo(2)).value
                #expect(value == 2)
            }
        }
    }
}
