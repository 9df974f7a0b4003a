import Foundation
import Kapsel
import KapselTestJobs
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite("Crashes: every kind, every phase")
    struct CrashTests {
        static let kinds: [CrashKind] = [.segfault, .sigkill, .abort, .exit3]

        @Test(arguments: kinds, CrashPhase.allCases)
        func aCrashResolvesItsJobAndTheDaemonIsReplaced(kind: CrashKind, phase: CrashPhase) async throws {
            try await withTestDaemons(1) { daemons in
                let firstPID = daemons.status().daemons[0].pid
                let result = await daemons.submit(Crash(kind, in: phase)).result
                guard case .failure(let error) = result else {
                    Issue.record("a crashing job resolved with a value")
                    return
                }
                #expect(error.code == .crashed)
                #expect(error.termination == kind.expectedTermination)
                #expect(error.message.contains("\(kind.expectedTermination)"))
                #expect(error.daemon?.index == 0)
                #expect(error.daemon?.instance == 1)

                // The replacement runs the next job.
                let next = try await daemons.submit(WhoAmI()).value
                #expect(next.instance == 2)
                #expect(next.pid != firstPID)
                let status = daemons.status()
                #expect(status.daemons[0].crashed == 1)
                #expect(status.daemons[0].instance == 2)
                #expect(status.daemons[0].online)
                #expect(firstPID.map { !processExists($0) } == true)
            }
        }

        @Test func aStackOverflowIsReportedAsSIGSEGV() async throws {
            try await withTestDaemons(1) { daemons in
                let result = await daemons.submit(Crash(.stackOverflow, in: .running)).result
                guard case .failure(let error) = result else {
                    Issue.record("expected a crash")
                    return
                }
                #expect(error.code == .crashed)
                #expect(error.termination == .signaled(signal: SIGSEGV))
                let value = try await daemons.submit(Echo(1)).value
                #expect(value == 1)
            }
        }

        @Test func aCrashReportShowsWhatTheDaemonLastPrinted() async throws {
            try await withTestDaemons(1) { daemons in
                let result = await daemons.submit(PreconditionFailure("the model file is corrupt")).result
                guard case .failure(let error) = result else {
                    Issue.record("expected a crash")
                    return
                }
                #expect(error.code == .crashed)
                #expect(error.termination == .signaled(signal: SIGILL) || error.termination == .signaled(signal: SIGTRAP))
                #expect(error.daemonOutput?.contains("Fatal error: the model file is corrupt") == true)
                #expect(error.description.contains("the model file is corrupt"))
                let failed = await daemons.submit(Fail("not a crash")).result
                if case .failure(let failure) = failed { #expect(failure.daemonOutput == nil) }
            }
        }

        @Test func retriesRerunAJobWhoseDaemonDied() async throws {
            try await withTestDaemons(1) { daemons in
                let marker = temporaryPath("crash-once")
                defer { unlink(marker) }
                let value = try await daemons.submit(CrashOnce(markerPath: marker, value: 77), retries: 1).value
                #expect(value == 77)
                #expect(daemons.status().daemons[0].crashed == 1)

                let marker2 = temporaryPath("crash-once")
                defer { unlink(marker2) }
                let noRetry = await daemons.submit(CrashOnce(markerPath: marker2, value: 1)).result
                guard case .failure(let error) = noRetry else {
                    Issue.record("expected a crash without retries")
                    return
                }
                #expect(error.code == .crashed)
            }
        }

        @Test func aStormOfCrashesResolvesEveryJobExactlyOnce() async throws {
            try await withTestDaemons(2) { daemons in
                let count = 500
                let handles: [(index: Int, handle: JobHandle<Int>?, crash: JobHandle<CrashingOutput>?)] = (0..<count).map { index in
                    if index % 10 == 3 {
                        return (index, nil, daemons.submit(Crash(.segfault, in: .running)))
                    }
                    return (index, daemons.submit(Echo(index)), nil)
                }
                var values = 0
                var crashes = 0
                for entry in handles {
                    if let handle = entry.handle {
                        let value = try await handle.value
                        #expect(value == entry.index)
                        values += 1
                    } else if let crash = entry.crash {
                        let result = await crash.result
                        guard case .failure(let error) = result, error.code == .crashed else {
                            Issue.record("job \(entry.index) should have crashed: \(result)")
                            continue
                        }
                        crashes += 1
                    }
                }
                #expect(values == 450)
                #expect(crashes == 50)
                // The counter moves just after a handle resolves, on the connection's thread.
                #expect(await eventually { daemons.dispatcher.resolutions.load(ordering: .relaxed) == count })
                #expect(daemons.dispatcher.repeatedResolutions.load(ordering: .relaxed) == 0)
                #expect(handles.allSatisfy { $0.handle?.isResolved ?? $0.crash!.isResolved })

                let status = daemons.status()
                #expect(status.daemons.map(\.crashed).reduce(0, +) == 50)
                #expect(await eventually { daemons.status().daemons.allSatisfy(\.online) })
                #expect(daemons.status().connections == 2)
                // Every crashed daemon has been reaped: no zombie children.
                #expect(ProcessInspection.children().filter(\.isZombie).isEmpty)
                #expect(ProcessInspection.children().count == 2)
            }
            #expect(ProcessInspection.children().isEmpty)
        }
    }
}
