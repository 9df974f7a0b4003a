import Foundation
import Kapsel
import KapselTestJobs
import Testing
@testable import Kapsel

/// A job the test daemon does not know.
struct NotRegistered: Job {
    var x = 1
    func run() async throws -> Int { x }
}

extension ProcessTests {
    @Suite("Jobs: values, errors, status")
    struct JobTests {
        @Test func submitReturnsAtOnceAndResolvesLater() async throws {
            try await withTestDaemons(1) { daemons in
                let handle = daemons.submit(Sleep(milliseconds: 300, value: 9))
                #expect(!handle.isResolved)
                #expect(handle.currentResult == nil)
                let value = try await handle.value
                #expect(value == 9)
                #expect(handle.isResolved)
                #expect(try handle.currentResult?.get() == 9)
            }
        }

        @Test func resultsMatchTheirJobs() async throws {
            try await withTestDaemons(2) { daemons in
                let handles = (0..<200).map { daemons.submit(Add($0, 1000)) }
                for (index, handle) in handles.enumerated() {
                    let value = try await handle.value
                    #expect(value == index + 1000)
                }
                let status = daemons.status()
                #expect(status.connections == 2)
                #expect(status.waiting == 0)
                #expect(status.daemons.map(\.complete).reduce(0, +) == 200)
                #expect(status.daemons.allSatisfy { $0.online && $0.instance == 1 && $0.crashed == 0 })
            }
        }

        /// With busy polling off (or long), both sides sleep between messages: the same
        /// results, whatever the gaps between jobs.
        @Test(arguments: [Duration.zero, .milliseconds(5)])
        func jobsRunWhateverTheBusyPolling(busyPoll: Duration) async throws {
            try await withTestDaemons(2, configure: { $0.busyPoll = busyPoll }) { daemons in
                for round in 0..<20 {
                    let handles = (0..<10).map { daemons.submit(Add($0, round)) }
                    for (index, handle) in handles.enumerated() {
                        #expect(try await handle.value == index + round)
                    }
                    if round % 5 == 0 { try await Task.sleep(for: .milliseconds(10)) }
                }
            }
        }

        @Test func everyCodableShapeCrossesBothWays() async throws {
            try await withTestDaemons(1) { daemons in
                let value = try await daemons.submit(Shapes(.sample)).value
                #expect(value == .sample)
            }
        }

        @Test func aThrownErrorArrivesWithItsTypeMessageAndLocation() async throws {
            try await withTestDaemons(1) { daemons in
                let located = await daemons.submit(Fail("n must be positive")).result
                guard case .failure(let error) = located else {
                    Issue.record("expected a failure")
                    return
                }
                #expect(error.code == .remote)
                #expect(error.remoteErrorType == "Kapsel.JobFailure")
                #expect(error.message == "n must be positive")
                #expect(error.location?.contains("KapselTestJobs/TestJobs.swift:") == true)
                #expect(error.location?.contains("run()") == true)
                #expect(error.jobType == "KapselTestJobs.Fail")
                #expect(error.daemon?.index == 0)

                let typed = await daemons.submit(FailTyped("x < 0")).result
                guard case .failure(let typedError) = typed else {
                    Issue.record("expected a failure")
                    return
                }
                #expect(typedError.remoteErrorType == "KapselTestJobs.TestError")
                #expect(typedError.message == "invalid input: x < 0")
                #expect(typedError.location == "KapselTestJobs.FailTyped.run()")
                // An error is not a crash: the daemon carries on.
                #expect(daemons.status().daemons[0].instance == 1)
            }
        }

        @Test func anUnknownJobTypeFailsNamingIt() async throws {
            try await withTestDaemons(1) { daemons in
                let result = await daemons.submit(NotRegistered()).result
                guard case .failure(let error) = result else {
                    Issue.record("expected a failure")
                    return
                }
                #expect(error.code == .unknownJobType)
                #expect(error.message.contains("no job type named 'KapselTests.NotRegistered'"))
                #expect(error.message.contains("Kapsel.bootstrap(jobs:)"))
                let value = try await daemons.submit(Echo(5)).value
                #expect(value == 5)
                #expect(daemons.status().daemons[0].instance == 1)
            }
        }

        @Test func jobsSeeTheirDaemonContext() async throws {
            try await withTestDaemons(2) { daemons in
                let handles = (0..<2).map { _ in daemons.submit(Sleep(milliseconds: 100)) }
                let first = daemons.submit(WhoAmI())
                _ = try await first.value
                for handle in handles { _ = try await handle.value }
                let status = daemons.status()
                let whereabouts = try await first.value
                #expect(status.daemons.contains { $0.index == whereabouts.daemonIndex && $0.pid == whereabouts.pid })
                #expect(whereabouts.instance == 1)
            }
        }

        @Test func roundRobinModeSendsJobsToEachDaemonInTurn() async throws {
            try await withTestDaemons(2, configure: { $0.dispatch = .roundRobin }) { daemons in
                let handles = (0..<10).map { _ in daemons.submit(WhoAmI()) }
                var indices: [Int] = []
                for handle in handles { indices.append(try await handle.value.daemonIndex) }
                #expect(indices == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
            }
        }

        @Test func theDispatcherSendsWorkToTheIdleDaemonNotBehindALongJob() async throws {
            try await withTestDaemons(2) { daemons in
                let long = daemons.submit(Sleep(milliseconds: 2000))
                try await Task.sleep(for: .milliseconds(50))
                // All of these must run on the other daemon while the long one sleeps.
                var indices: Set<Int> = []
                for _ in 0..<20 { indices.insert(try await daemons.submit(WhoAmI()).value.daemonIndex) }
                #expect(indices.count == 1)
                #expect(!long.isResolved)
                long.cancel()
            }
        }

        @Test func theSecretIsNotLeftInTheDaemonsEnvironment() async throws {
            try await withTestDaemons(1) { daemons in
                let pid = daemons.status().daemons[0].pid!
                let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
                let entries = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                let secret = entries.first { $0.hasPrefix("KAPSEL_SECRET=") }
                #expect(secret != nil)
                #expect(secret?.dropFirst("KAPSEL_SECRET=".count).allSatisfy { $0 == "*" } == true)
                let value = try await daemons.submit(Echo(1)).value
                #expect(value == 1)
            }
        }

        @Test func statusShowsConnectionsAndCounters() async throws {
            try await withTestDaemons(2) { daemons in
                for value in 0..<4 { _ = try await daemons.submit(Echo(value)).value }
                let status = daemons.status()
                #expect(status.url == daemons.url)
                #expect(status.url.hasPrefix("unix:///"))
                #expect(status.connections == 2)
                #expect(status.daemons.count == 2)
                #expect(status.daemons.map(\.assigned).reduce(0, +) == 4)
                #expect(status.daemons.allSatisfy { $0.pid != nil && $0.online })
                let table = status.description
                #expect(table.contains("online") && table.contains("instance") && table.contains("crashed"))
            }
        }
    }
}
