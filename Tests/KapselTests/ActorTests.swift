import Distributed
import Foundation
import Kapsel
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An actor type the test daemon does not know.
distributed actor Unregistered: KapselActor {
    typealias ActorSystem = KapselActorSystem
    init(actorSystem: KapselActorSystem, configuration: NoConfiguration) { self.actorSystem = actorSystem }
}

extension ProcessTests {
    @Suite("Distributed actors in daemons")
    struct ActorTests {
        @Test func anActorLivesOnTheChosenDaemonAndKeepsItsState() async throws {
            try await withTestDaemons(2) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 10, on: .daemon(1))
                let whereabouts = try await counter.whereAmI()
                #expect(whereabouts.daemonIndex == 1)
                #expect(whereabouts.pid == daemons.status().daemons[1].pid)
                #expect(try await counter.add(5) == 15)
                #expect(try await counter.add(1) == 16)
                #expect(try await counter.current() == 16)
            }
        }

        @Test func everyCodableShapeAndGenericsCrossBothWays() async throws {
            try await withTestDaemons(1) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 0)
                #expect(try await counter.echo(.sample) == .sample)
                #expect(try await counter.identity(["a": [1, 2], "b": []]) == ["a": [1, 2], "b": []])
                #expect(try await counter.identity(Optional<String>.none) == nil)
                #expect(try await counter.identity(ShapeSample.Kind.pair(3, 0.5)) == .pair(3, 0.5))
            }
        }

        @Test func sharedArraysCrossWithoutCopies() async throws {
            try await withTestDaemons(1) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 0)
                let values = try SharedArray<Double>(count: 1_000_000) { buffer in
                    for index in buffer.indices { buffer[index] = Double(index % 10) }
                }
                #expect(try await counter.sum(values) == 4_500_000)
                let scaled = try await counter.scaled(values, by: 3)
                #expect(scaled.count == 1_000_000 && scaled[999_999] == 27)
                // It arrived as shared memory made by the daemon: read-only here.
                #expect(scaled.isReadOnly)
            }
        }

        @Test func aThrownErrorArrivesWithItsTypeAndMessage() async throws {
            try await withTestDaemons(1) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 0)
                await #expect {
                    try await counter.fail("the model diverged")
                } throws: { error in
                    guard let error = error as? JobError else { return false }
                    return error.code == .remote && error.remoteErrorType == "Kapsel.JobFailure" && error.message == "the model diverged"
                        && error.location?.contains("TestActors.swift") == true
                }
                await #expect {
                    try await counter.failTyped("n < 0")
                } throws: { error in
                    (error as? JobError)?.remoteErrorType == "KapselTestJobs.TestError" && (error as? JobError)?.message == "invalid input: n < 0"
                }
                // The actor is still there.
                #expect(try await counter.add(2) == 2)
            }
        }

        @Test func droppingTheLastProxyFreesTheActorInItsDaemon() async throws {
            try await withTestDaemons(1) { daemons in
                do {
                    let counter = try await daemons.spawn(Counter.self, configuration: 0)
                    _ = try await counter.add(1)
                    #expect(await eventually { daemons.status().daemons[0].actors == 1 })
                    let child = try await counter.makeChild(start: 3)
                    #expect(try await child.add(1) == 4)
                    #expect(try await counter.addFrom(child) == 5)
                    #expect(await eventually { daemons.status().daemons[0].actors == 2 })
                }
                #expect(await eventually { daemons.status().daemons[0].actors == 0 }, "the daemon still holds \(daemons.status().daemons[0].actors) actors")
            }
        }

        @Test func aCrashFailsTheCallAndTheProxyIsLost() async throws {
            try await withTestDaemons(1) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 0)
                await #expect {
                    try await counter.crash()
                } throws: { error in
                    guard let error = error as? JobError else { return false }
                    return error.code == .crashed && error.termination == .signaled(signal: SIGSEGV)
                }
                await #expect {
                    try await counter.current()
                } throws: { error in
                    guard let error = error as? JobError else { return false }
                    return error.code == .actorLost && error.message.contains("lost with its daemon") && error.termination == .signaled(signal: SIGSEGV)
                }
                // The daemon itself was replaced and hosts new actors.
                #expect(await eventually { daemons.status().daemons[0].instance == 2 && daemons.status().daemons[0].online })
                let fresh = try await daemons.spawn(Counter.self, configuration: 7)
                #expect(try await fresh.current() == 7)
            }
        }

        @Test func aRestartPolicyGivesAFreshActorOnTheNewDaemon() async throws {
            try await withTestDaemons(1) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 10, restart: .recreate)
                #expect(try await counter.add(5) == 15)
                let first = try await counter.whereAmI()
                _ = try? await counter.crash()
                // The call waits for the actor to be created again: fresh state, same configuration.
                #expect(try await counter.current() == 10)
                let second = try await counter.whereAmI()
                #expect(second.instance == first.instance + 1 && second.pid != first.pid)
            }
        }

        @Test func callsOnOneActorRunInOrder() async throws {
            try await withTestDaemons(1) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 0)
                var calls: [Task<[Int], any Error>] = []
                for entry in 0..<8 {
                    // Later calls wait less: run concurrently, they would finish first.
                    calls.append(Task { try await counter.slowAppend(entry, milliseconds: (8 - entry) * 15) })
                    try await Task.sleep(for: .milliseconds(2))
                }
                var last: [Int] = []
                for call in calls { last = try await call.value }
                #expect(last == Array(0..<8))
            }
        }

        @Test func callsOnDifferentActorsOfADaemonRunConcurrently() async throws {
            try await withTestDaemons(1) { daemons in
                let waiter = try await daemons.spawn(Counter.self, configuration: 0)
                let setter = try await daemons.spawn(Counter.self, configuration: 0)
                // The waiter's call only ends once the setter's call has run: if calls of
                // one daemon ran one at a time, it would wait its full 5 s and say false.
                let waiting = Task { try await waiter.waitFor("go") }
                try await Task.sleep(for: .milliseconds(50))
                try await setter.set("go")
                #expect(try await waiting.value)
            }
        }

        @Test func aCallPastItsTimeLimitFailsAndTheActorCarriesOn() async throws {
            try await withTestDaemons(1) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 3)
                let pid = daemons.status().daemons[0].pid
                await #expect {
                    try await KapselActorSystem.$callTimeout.withValue(.milliseconds(200)) {
                        try await counter.sleep(milliseconds: 10_000)
                    }
                } throws: { error in
                    (error as? JobError)?.code == .timedOut
                }
                #expect(try await counter.current() == 3)
                #expect(daemons.status().daemons[0].pid == pid)
            }
        }

        @Test func cancellingTheCallingTaskCancelsTheCall() async throws {
            try await withTestDaemons(1) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 0)
                let call = Task { try await counter.sleep(milliseconds: 60_000) }
                try await Task.sleep(for: .milliseconds(100))
                call.cancel()
                await #expect { try await call.value } throws: { ($0 as? JobError)?.code == .cancelled }
                #expect(try await counter.add(1) == 1)
            }
        }

        @Test func aPooledActorsCallsGoToTheFirstIdleDaemon() async throws {
            try await withTestDaemons(2) { daemons in
                let calculator = try await daemons.pooled(Calculator.self)
                #expect(try await calculator.square(12) == 144)
                let places = try await withThrowingTaskGroup(of: Whereabouts.self) { group in
                    for _ in 0..<6 { group.addTask { try await calculator.whereAmI(after: 100) } }
                    return try await group.reduce(into: [Whereabouts]()) { $0.append($1) }
                }
                #expect(Set(places.map(\.daemonIndex)) == [0, 1])
                #expect(await eventually { daemons.status().daemons.allSatisfy { $0.actors == 1 } })
            }
        }

        @Test func anActorCannotCallAnActorOfAnotherDaemon() async throws {
            try await withTestDaemons(2) { daemons in
                let first = try await daemons.spawn(Counter.self, configuration: 1, on: .daemon(0))
                let second = try await daemons.spawn(Counter.self, configuration: 2, on: .daemon(1))
                await #expect {
                    try await first.addFrom(second)
                } throws: { error in
                    guard let error = error as? JobError else { return false }
                    return error.code == .remote && error.message.contains("a daemon calls only its own actors")
                }
                #expect(try await first.current() == 1)
                #expect(try await second.current() == 2)
            }
        }

        @Test func anUnknownActorTypeFailsNamingIt() async throws {
            _ = try await withTestDaemons(1) { daemons in
                await #expect {
                    _ = try await daemons.spawn(Unregistered.self)
                } throws: { error in
                    guard let error = error as? JobError else { return false }
                    return error.code == .unknownJobType && error.message.contains("no actor type named 'KapselTests.Unregistered'")
                }
            }
        }
    }
}
