import Foundation
import Kapsel
import KapselStress
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    @Suite("Lifecycle: start, stop, host death")
    struct LifecycleTests {
        @Test func daemonsDieWithTheirHost() throws {
            // Orphans are re-parented to this process, so it can see them exit and reap them.
            try HostDeath.adoptingOrphans { try watchDaemonsDieWithTheirHost() }
        }

        func watchDaemonsDieWithTheirHost() throws {
            let host = Process()
            host.executableURL = URL(fileURLWithPath: testDaemonPath)
            host.arguments = ["host", "2"]
            let output = Pipe()
            host.standardOutput = output
            try host.run()
            var lines: [String] = []
            var buffered = Data()
            while !lines.contains("ready") {
                let chunk = output.fileHandleForReading.availableData
                guard !chunk.isEmpty else { break }
                buffered += chunk
                lines = String(decoding: buffered, as: UTF8.self).split(separator: "\n").map(String.init)
            }
            let pids = lines.compactMap { Int32($0) }
            #expect(pids.count == 2)
            #expect(pids.allSatisfy(processExists))

            kill(host.processIdentifier, SIGKILL)
            let start = Date()
            var gone: Set<Int32> = []
            while gone.count < pids.count && Date().timeIntervalSince(start) < 2 {
                for pid in pids where !gone.contains(pid) {
                    var status: Int32 = 0
                    // The daemon is our child now; waitpid returns it once it has exited.
                    if waitpid(pid, &status, WNOHANG) == pid || !processExists(pid) { gone.insert(pid) }
                }
                usleep(2_000)
            }
            host.waitUntilExit()
            #expect(gone.count == 2, "daemons still alive 2 s after their host died: \(Set(pids).subtracting(gone))")
        }

        @Test func aDaemonThatCannotStartIsReportedWithItsOutput() async throws {
            await #expect {
                _ = try await Daemons(1, options: testOptions { $0.executable = .path(testDaemonPath, arguments: ["no-bootstrap"]) })
            } throws: { error in
                let text = String(describing: error)
                return text.contains("before connecting") && text.contains("never called Kapsel.bootstrap(jobs:)")
                    && text.contains("exit code \(DaemonExitCode.configuration.rawValue)")
            }
            await #expect {
                _ = try await Daemons(2, options: testOptions { $0.executable = .path("/bin/false") })
            } throws: { error in
                String(describing: error).contains("exited with exit code 1 before connecting")
            }
            await #expect {
                _ = try await Daemons(1, options: testOptions { $0.executable = .path("/nonexistent/daemon") })
            } throws: { error in
                String(describing: error).contains("does not exist or is not executable")
            }
            #expect(ProcessInspection.children().isEmpty)
        }

        @Test func stopResolvesEverythingAndEndsEveryDaemon() async throws {
            let daemons = try await Daemons(2, options: testOptions())
            let pids = daemons.status().daemons.compactMap(\.pid)
            let running = (0..<2).map { _ in daemons.submit(Sleep(milliseconds: 60_000)) }
            let queued = (0..<3).map { daemons.submit(Echo($0)) }
            try await Task.sleep(for: .milliseconds(50))
            await daemons.stop()
            for handle in running + queued {
                guard case .failure(let error) = await handle.result else {
                    Issue.record("expected stopped")
                    continue
                }
                #expect(error.code == .stopped)
            }
            #expect(pids.allSatisfy { !processExists($0) })
            guard case .failure(let late) = await daemons.submit(Echo(1)).result else {
                Issue.record("a job submitted after stop ran")
                return
            }
            #expect(late.code == .stopped)
            await daemons.stop()
            #expect(ProcessInspection.children().isEmpty)
        }

        @Test func poolsLeaveNoDescriptorMemoryOrProcessBehind() throws {
            // Counted in a host process of its own: other suites of this test process open
            // descriptors and map memory in parallel.
            let outcome = try runProcess(testDaemonPath, arguments: ["leak-check"], environment: ["PATH": "/usr/bin:/bin"], timeout: 120)
            #expect(outcome.status == 0, "resources left behind:\n\(outcome.output)")
            #expect(outcome.output.contains("descriptors"))
        }

        @Test func stopDoesNotWaitForAJobThatIgnoresCancellation() async throws {
            // With a one-minute shutdown grace, only the cancellation grace can end the
            // spinning daemon in time.
            let daemons = try await Daemons(1, options: testOptions { $0.shutdownGrace = .seconds(60) })
            let pid = daemons.status().daemons[0].pid!
            let spinning = daemons.submit(Spin())
            try await Task.sleep(for: .milliseconds(50))
            let clock = ContinuousClock()
            let start = clock.now
            await daemons.stop()
            #expect(clock.now - start < .seconds(30))
            #expect(!processExists(pid))
            guard case .failure(let error) = await spinning.result else {
                Issue.record("a spinning job resolved with a value")
                return
            }
            #expect(error.code == .stopped)
        }

        struct Boom: Error {}

        @Test func theScopedFormStopsTheDaemonsWhenItsBodyThrows() async throws {
            var pids: [Int32] = []
            await #expect(throws: Boom.self) {
                try await withTestDaemons(2) { daemons in
                    pids = daemons.status().daemons.compactMap(\.pid)
                    throw Boom()
                }
            }
            #expect(pids.count == 2)
            #expect(pids.allSatisfy { !processExists($0) })
            #expect(ProcessInspection.children().isEmpty)
        }

        @Test func theSocketDirectoryIsPrivateAndRemovedAfterwards() async throws {
            var directory = ""
            try await withTestDaemons(1) { daemons in
                directory = String(daemons.url.dropFirst("unix://".count).dropLast("/host.sock".count))
                let attributes = try FileManager.default.attributesOfItem(atPath: directory)
                #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)
            }
            #expect(!FileManager.default.fileExists(atPath: directory))
        }
    }
}
