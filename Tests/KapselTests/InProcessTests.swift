import Kapsel
import KapselSequences
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    /// Daemons in the host (`DaemonOptions.Launch.inProcess`) against daemon processes: one
    /// suite of jobs, `everywhere`, `map`, prefetch and actor calls, run both ways, must give
    /// the same values and the same errors.
    @Suite("In-process daemons: the same results and errors as daemon processes")
    struct InProcessTests {
        init() {
            Kapsel.bootstrap(jobs: TestJobs.all, actors: TestActors.all)
        }

        /// A result as text that holds what a user compares: the value, or the error's
        /// code, type, message and location (not its daemon, whose pid differs).
        func describe<T>(_ result: Result<T, JobError>) -> String {
            switch result {
            case .success(let value): "value \(value)"
            case .failure(let error): "error \(error.code) \(error.remoteErrorType ?? "-") \(error.message) \(error.location ?? "-")"
            }
        }

        func describe<T>(_ body: () async throws -> T) async -> String {
            do {
                return "value \(try await body())"
            } catch let error as JobError {
                return describe(Result<T, JobError>.failure(error))
            } catch {
                return "other \(error)"
            }
        }

        /// What the suite gives on two daemons launched by `launch`.
        func suite(_ launch: DaemonOptions.Launch) async throws -> [String] {
            try await withTestDaemons(2, configure: { $0.launch = launch }) { daemons in
                var seen: [String] = []
                seen.append(describe(await daemons.submit(Echo(7)).result))
                seen.append(describe(await daemons.submit(Add(40, 2)).result))
                seen.append(describe(await daemons.submit(Fail("the model diverged")).result))
                seen.append(describe(await daemons.submit(FailTyped("negative variance")).result))
                seen.append(describe(await daemons.submit(Sleep(milliseconds: 20_000), timeout: .milliseconds(100)).result))
                let cancelled = daemons.submit(Sleep(milliseconds: 20_000))
                cancelled.cancel()
                seen.append(describe(await cancelled.result))

                let stored = await daemons.everywhere(StoreSetting(key: "model", value: "gbm"))
                seen.append("everywhere \(stored.count) \(stored.allSatisfy { (try? $0.get()) != nil })")
                seen.append(describe(await daemons.submit(ReadSetting(key: "model")).result))

                let mapped = await daemons.map([MapStep.Action.echo(1), .fail("item 2 is bad"), .echo(3)]) { MapStep($0) }
                seen += mapped.map { describe($0.map(\.value)) }
                var prefetched: [Int] = []
                for try await value in LazyIndexed(count: 6, { Echo($0 + 1) }).prefetch(on: daemons, buffer: 4) { prefetched.append(value) }
                seen.append("prefetch \(prefetched)")

                let counter = try await daemons.spawn(Counter.self, configuration: 10)
                seen.append(await describe { try await counter.add(5) })
                seen.append(await describe { try await counter.fail("the actor refused") })
                let values = try SharedArray<Double>(count: 1000) { buffer in
                    for index in buffer.indices { buffer[index] = Double(index) }
                }
                seen.append(await describe { try await counter.sum(values) })
                let scaled = try await counter.scaled(values, by: 2)
                seen.append("scaled \(scaled.count) \(scaled[999])")
                return seen
            }
        }

        @Test func theSameSuiteGivesTheSameResultsInDaemonProcessesAndInTheHost() async throws {
            let inDaemons = try await suite(.local)
            let inHost = try await suite(.inProcess)
            #expect(inHost == inDaemons)
            #expect(inDaemons.count == 16)
            #expect(inDaemons.contains { $0.hasPrefix("error remote error Kapsel.JobFailure the model diverged") })
            #expect(inDaemons.contains { $0.hasPrefix("error timed out") } && inDaemons.contains { $0.hasPrefix("error cancelled") })
            #expect(inDaemons.contains("prefetch [1, 2, 3, 4, 5, 6]") && inDaemons.contains("value Optional(\"gbm\")"))
            #expect(inDaemons.contains("value 15") && inDaemons.contains("value 499500.0") && inDaemons.contains("scaled 1000 1998.0"))
        }

        @Test func inProcessJobsRunInTheHost() async throws {
            try await withTestDaemons(2, configure: { $0.launch = .inProcess }) { daemons in
                let whereabouts = try await daemons.submit(WhoAmI()).value
                #expect(whereabouts.pid == getpid())
                #expect(daemons.status().online == 2)
                #expect(daemons.status().daemons.allSatisfy { $0.pid == nil }, "no process of its own")
            }
        }
    }
}
