import Foundation
import Kapsel
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Options for a controller of test daemons.
func testController(
    _ workers: ClosedRange<Int>, idleTime: Duration? = .seconds(30), crashesMax: Int = 0, launchTimeout: Duration? = .seconds(30),
    launch: DaemonOptions.Launch = .local, configure: (inout DaemonOptions) -> Void = { _ in }
) -> ControllerOptions {
    ControllerOptions(workers: workers, idleTime: idleTime, crashesMax: crashesMax, launchTimeout: launchTimeout, launch: launch, daemons: testOptions(configure))
}

extension ProcessTests {
    @Suite("Controllers: pools that size themselves, on this machine")
    struct ControllerTests {
        @Test func aPoolFromZeroScalesUpForAMapAndBackToZeroWhenIdle() async throws {
            try await withDaemons(controller: testController(0...3, idleTime: .milliseconds(300))) { daemons in
                #expect(daemons.status().daemons.allSatisfy { $0.phase == .parked }, "no worker before there is work")
                let results = await daemons.map(0..<200) { MapStep(.sleep(milliseconds: 2, value: $0)) }
                #expect(results.map { try? $0.get().value } == Array(0..<200))
                let used = Set(results.compactMap { try? $0.get().daemonIndex })
                #expect(used.count > 1 && used.isSubset(of: [0, 1, 2]), "several workers, at most three: \(used)")
                let pids = daemons.status().daemons.compactMap(\.pid)
                #expect(await eventually(within: .seconds(10)) { daemons.status().daemons.allSatisfy { $0.phase == .parked } }, "\(daemons.status())")
                #expect(pids.allSatisfy { !processExists($0) })
                #expect(daemons.status().crashes == 0)
                // Work again after scaling down: the pool starts a worker for it.
                let again = try await daemons.submit(Echo(7)).value
                #expect(again == 7)
            }
        }

        @Test func aPoolKeepsItsMinimumWhenIdle() async throws {
            try await withDaemons(controller: testController(1...2, idleTime: .milliseconds(200))) { daemons in
                #expect(daemons.status().online == 1, "the minimum is there at once")
                let handles = (0..<4).map { daemons.submit(Sleep(milliseconds: 300, value: $0)) }
                for handle in handles { _ = try await handle.value }
                #expect(daemons.status().daemons.allSatisfy { $0.instance == 1 }, "the second worker started")
                #expect(await eventually(within: .seconds(5)) { daemons.status().daemons.count { $0.phase == .parked } == 1 })
                try await Task.sleep(for: .milliseconds(600))
                #expect(daemons.status().online == 1, "\(daemons.status())")
            }
        }

        @Test func aJobWhoseWorkerDiesRunsAgainUpToCrashesMaxThenResolvesWithTheCount() async throws {
            let marker = temporaryPath("crash-once")
            defer { unlink(marker) }
            try await withDaemons(controller: testController(0...2, crashesMax: 2)) { daemons in
                let retried = try await daemons.submit(CrashOnce(markerPath: marker, value: 5)).value
                #expect(retried == 5, "retried on a new worker")
                let always = await daemons.submit(Crash(.segfault, in: .running)).result
                guard case .failure(let error) = always else { Issue.record("a job that always crashes succeeded"); return }
                #expect(error.code == .crashed)
                #expect(error.message.contains("3 times"), "\(error.message)")
                #expect(await daemons.submit(Crash(.sigkill, in: .running), retries: 0).result.failure?.message.contains("times") == false)
                #expect(daemons.status().crashes == 5)
            }
        }

        @Test func aLaunchThatNeverConnectsResolvesTheWaitingJobsAsLaunchFailed() async throws {
            let hanging = testController(0...1, launchTimeout: .milliseconds(400), launch: .command("echo still queued; sleep 5; {command}")) {
                $0.maxConsecutiveStartFailures = 2
            }
            try await withDaemons(controller: hanging) { daemons in
                let result = await daemons.submit(Echo(1)).result
                #expect(result.failure?.code == .launchFailed)
                let message = result.failure?.message ?? ""
                #expect(message.contains("command template") && message.contains("did not connect within 0.4 seconds") && message.contains("still queued"), "\(message)")
                #expect(daemons.status().daemons.allSatisfy { $0.phase == .parked }, "ready to try again")
            }
            let failing = testController(0...2, launch: .command("echo 'cannot submit: no such queue' >&2; exit 4; {command}"))
            try await withDaemons(controller: failing) { daemons in
                let results = await (0..<3).map { daemons.submit(Echo($0)) }.asyncMap { await $0.result }
                for result in results {
                    #expect(result.failure?.code == .launchFailed)
                    #expect(result.failure?.message.contains("exit code 4") == true && result.failure?.message.contains("no such queue") == true)
                }
            }
        }

        @Test func anActorStartsAWorkerAndKeepsItFromRetiring() async throws {
            try await withDaemons(controller: testController(0...2, idleTime: .milliseconds(200))) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 1)
                #expect(try await counter.add(2) == 3)
                try await Task.sleep(for: .milliseconds(700))
                #expect(daemons.status().online == 1, "the actor's worker stays")
                #expect(try await counter.current() == 3)
            }
        }

        @Test func profilesRunSideBySideAndStopTogether() async throws {
            var pids: [Int32] = []
            try await withControllers(["small": testController(1...1), "big": testController(0...2)]) { group in
                #expect(group.profiles == ["small", "big"])
                let here = try await group.submit(WhoAmI()).value
                #expect(try group["small"].status().daemons.contains { $0.pid == here.pid }, "the default profile is the first")
                let there = try await group.submit(WhoAmI(), profile: "big").value
                #expect(try group["big"].status().daemons.contains { $0.pid == there.pid })
                let mapped = try await group["big"].map(0..<20) { Echo($0) }
                #expect(mapped.compactMap { try? $0.get() } == Array(0..<20))
                #expect(throws: DaemonsError.self) { try group["gpu"] }
                #expect(await group.submit(Echo(1), profile: "gpu").result.failure?.code == .daemonsUnavailable)
                let status = group.status()
                #expect(status["small"]?.online == 1 && status["big"] != nil)
                let text = "\(status)"
                #expect(text.contains("profile small") && text.contains("profile big") && text.contains("workers:"), "\(text)")
                pids = status.profiles.flatMap { $0.status.daemons.compactMap(\.pid) }
            }
            #expect(pids.count >= 2 && pids.allSatisfy { !processExists($0) }, "every profile's workers are gone")
        }

        @Test func aGroupWhoseProfileCannotStartStopsTheOthersAndSaysWhich() async throws {
            var broken = testController(1...1)
            broken.daemons.executable = .path("/nonexistent/worker")
            await #expect(throws: DaemonsError.self) {
                try await withControllers(["fine": testController(1...1), "broken": broken]) { _ in }
            }
            do {
                try await withControllers(["fine": testController(1...1), "broken": broken]) { _ in }
            } catch {
                #expect("\(error)".contains("profile \"broken\""), "\(error)")
            }
        }
    }
}

extension Result {
    /// The error, if it failed.
    var failure: Failure? {
        if case .failure(let error) = self { error } else { nil }
    }
}

extension Sequence {
    /// `transform` applied to each element in turn, awaited.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
