import Kapsel
import KapselServiceLifecycle
import KapselTestJobs
import Logging
import ServiceLifecycle
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    /// A pool run by a swift-service-lifecycle `ServiceGroup`, shut down by a real SIGTERM
    /// to this process (the group traps it before it starts its services).
    @Suite("A pool as a Service: started by a ServiceGroup, drained on SIGTERM")
    struct ServiceLifecycleTests {
        func group(_ service: DaemonPoolService) -> ServiceGroup {
            ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm], logger: Logger(label: "kapsel-tests") { _ in SwiftLogNoOpLogHandler() })
        }

        @Test func sigtermRefusesNewJobsLetsSubmittedOnesFinishThenStopsTheDaemons() async throws {
            let service = DaemonPoolService(2, options: testOptions(), shutdownGrace: .seconds(20))
            let run = Task { try await group(service).run() }
            let daemons = try await service.daemons
            let pids = daemons.status().daemons.compactMap(\.pid)
            #expect(pids.count == 2)
            let running = [daemons.submit(Sleep(milliseconds: 400, value: 1)), daemons.submit(Sleep(milliseconds: 400, value: 2))]
            let waiting = daemons.submit(Echo(3))
            #expect(await eventually { daemons.status().daemons.allSatisfy { $0.running > 0 } })

            kill(getpid(), SIGTERM)
            var late: JobHandle<Int>?
            #expect(await eventually {
                let handle = daemons.submit(Echo(4))
                late = handle
                return handle.currentResult != nil
            })
            guard case .failure(let refusal)? = late?.currentResult else {
                Issue.record("a job submitted during the shutdown should be refused at once")
                return
            }
            #expect(refusal.code == .shuttingDown)

            #expect(try await running[0].value == 1)
            #expect(try await running[1].value == 2)
            #expect(try await waiting.value == 3)
            try await run.value
            #expect(await eventually { pids.allSatisfy { !processExists($0) } })
            #expect(daemons.status().online == 0)
            guard case .failure(let afterwards) = await daemons.submit(Echo(5)).result else {
                Issue.record("a stopped pool takes no jobs")
                return
            }
            #expect(afterwards.code == .stopped)
        }

        @Test func jobsStillRunningWhenTheGraceEndsResolveAsStopped() async throws {
            let service = DaemonPoolService(1, options: testOptions(), shutdownGrace: .milliseconds(200))
            let run = Task { try await group(service).run() }
            let daemons = try await service.daemons
            let long = daemons.submit(Sleep(milliseconds: 30_000))
            #expect(await eventually { daemons.status().daemons[0].running == 1 })
            kill(getpid(), SIGTERM)
            guard case .failure(let error) = await long.result else {
                Issue.record("a 30-second job cannot finish within a 200 ms grace")
                return
            }
            #expect(error.code == .stopped)
            try await run.value
        }

        @Test func aPoolThatCannotStartFailsItsGroupAndThoseWaitingForIt() async throws {
            let service = DaemonPoolService(1, options: testOptions { $0.executable = .path("/bin/false") })
            let waiter = Task { try await service.daemons }
            await #expect(throws: DaemonsError.self) { try await group(service).run() }
            await #expect(throws: DaemonsError.self) { try await waiter.value }
            await #expect(throws: DaemonsError.self) { try await service.daemons }
        }
    }
}
