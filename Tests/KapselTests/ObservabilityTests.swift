import CoreMetrics
import InMemoryLogging
import Kapsel
import KapselTestJobs
import KapselWire
import Logging
import MetricsTestKit
import Testing

extension ProcessTests {
    /// A pool's events in the host's swift-log `Logger` and its figures in a swift-metrics
    /// backend, from real daemons.
    @Suite("Logging and metrics: what a pool tells swift-log and swift-metrics")
    struct ObservabilityTests {
        /// A logger that keeps every record, at every level.
        func capturingLogger() -> (Logger, InMemoryLogHandler) {
            let handler = InMemoryLogHandler()
            var logger = Logger(label: "kapsel-tests") { _ in handler }
            logger.logLevel = .trace
            return (logger, handler)
        }

        @Test func aCrashIsLoggedWithTheDaemonsMetadataItsSignalAndItsLastWords() async throws {
            let (logger, handler) = capturingLogger()
            try await withTestDaemons(1, configure: { $0.logger = logger; $0.name = "crashy" }) { daemons in
                let pid = try #require(daemons.status().daemons[0].pid)
                let result = await daemons.submit(PrintLine("last words before the fall", then: .segfault)).result
                guard case .failure(let error) = result else {
                    Issue.record("the job should have crashed its daemon")
                    return
                }
                #expect(error.code == .crashed)
                #expect(await eventually { daemons.status().daemons[0].online && daemons.status().daemons[0].instance == 2 })

                let entries = handler.entries
                let printed = entries.first { $0.message.description == "last words before the fall" }
                #expect(printed?.level == .info)
                #expect(printed?.metadata["kapsel.pid"] == "\(pid)")
                #expect(printed?.metadata["kapsel.daemon"] == "0")
                #expect(printed?.metadata["kapsel.instance"] == "1")

                let crash = try #require(entries.first { $0.message == "daemon crashed" })
                #expect(crash.level == .warning)
                #expect(crash.metadata["kapsel.pool"] == "crashy")
                #expect(crash.metadata["kapsel.daemon"] == "0")
                #expect(crash.metadata["kapsel.instance"] == "1")
                #expect(crash.metadata["kapsel.pid"] == "\(pid)")
                #expect(crash.metadata["kapsel.termination"]?.description.contains("SIGSEGV") == true)
                #expect(crash.metadata["kapsel.output"]?.description.contains("last words before the fall") == true)
                #expect(crash.metadata["kapsel.jobType"]?.description.hasSuffix("PrintLine") == true)

                let launches = entries.filter { $0.message == "daemon launched" }
                #expect(launches.map(\.level) == [.debug, .debug])
                #expect(launches.map { $0.metadata["kapsel.instance"] } == ["1", "2"])
                #expect(entries.contains { $0.message == "daemon replaced" && $0.level == .debug && $0.metadata["kapsel.instance"] == "2" })
                #expect(entries.filter { $0.message == "daemon online" }.count == 2)
            }
        }

        @Test func theHappyPathLogsNothingAboveDebug() async throws {
            let (logger, handler) = capturingLogger()
            try await withTestDaemons(2, configure: { $0.logger = logger }) { daemons in
                let values = try await (1...20).map { daemons.submit(Echo($0)) }.asyncMap { try await $0.value }
                #expect(values == Array(1...20))
                _ = await daemons.everywhere(Echo(0))
            }
            let entries = handler.entries
            #expect(entries.contains { $0.message == "daemon online" })
            let loud = entries.filter { $0.level > .debug }
            #expect(loud.isEmpty, "\(loud.map { "\($0.level) \($0.message)" })")
        }

        @Test func aRefusedPeerIsLoggedWithTheReason() async throws {
            let (logger, handler) = capturingLogger()
            try await withTestDaemons(1, configure: { $0.logger = logger }) { daemons in
                let process = try startDaemonProcess(url: daemons.url, secret: HostSecret.random().hex)
                _ = finish(process)
                #expect(await eventually { handler.entries.contains { $0.message == "connection refused" } })
                let refusal = handler.entries.first { $0.message == "connection refused" }
                #expect(refusal?.level == .warning)
                #expect(refusal?.metadata["kapsel.reason"]?.description.contains("authentication failed") == true)
            }
        }

        @Test func aLaunchThatFailsIsLogged() async throws {
            let (logger, handler) = capturingLogger()
            let error = await #expect(throws: DaemonsError.self) {
                try await withDaemons(1, options: testOptions {
                    $0.logger = logger
                    $0.executable = .path("/bin/sh", arguments: ["-c", "echo no bootstrap here; exit 78"])
                }) { _ in }
            }
            #expect(error != nil)
            let failures = handler.entries.filter { $0.message == "daemon launch failed" }
            #expect(failures.count == 3)
            #expect(failures.allSatisfy { $0.level == .warning && $0.metadata["kapsel.reason"]?.description.contains("exit code 78") == true })
            #expect(handler.entries.contains { $0.message == "daemon slot given up after repeated failed starts" && $0.level == .error })
            #expect(handler.entries.contains { $0.message == "no bootstrap here" && $0.level == .info })
        }

        @Test func theFiguresOfARunWithKnownCountsReachTheMetricsBackend() async throws {
            let metrics = TestMetrics()
            let pool = [("pool", "counted")]
            try await withTestDaemons(2, configure: { $0.metricsFactory = metrics; $0.name = "counted"; $0.gaugeInterval = .milliseconds(20) }) { daemons in
                for value in 1...5 { _ = try await daemons.submit(Echo(value)).value }
                for _ in 1...2 { _ = await daemons.submit(Fail("no")).result }
                // Dies under its job twice: one retry, then the job fails as crashed.
                _ = await daemons.submit(Crash(.segfault, in: .running), retries: 1).result
                #expect(await eventually { (try? metrics.expectGauge("kapsel_daemons_online", pool).lastValue) == 2 })
            }
            #expect(try metrics.expectCounter("kapsel_jobs_submitted_total", pool).totalValue == 8)
            #expect(try metrics.expectCounter("kapsel_jobs_succeeded_total", pool).totalValue == 5)
            #expect(try metrics.expectCounter("kapsel_jobs_failed_total", pool + [("code", "remote_error")]).totalValue == 2)
            #expect(try metrics.expectCounter("kapsel_jobs_failed_total", pool + [("code", "daemon_crashed")]).totalValue == 1)
            #expect(try metrics.expectCounter("kapsel_daemon_crashes_total", pool).totalValue == 2)
            #expect(try metrics.expectCounter("kapsel_job_retries_total", pool).totalValue == 1)
            #expect(try metrics.expectCounter("kapsel_daemon_replacements_total", pool).totalValue == 2)
            #expect(try metrics.expectTimer("kapsel_job_round_trip_seconds", pool).values.count == 8)
            #expect(try metrics.expectTimer("kapsel_job_queue_wait_seconds", pool).values.count == 8)
            // Sampled once more when the pool stopped.
            #expect(try metrics.expectGauge("kapsel_daemons_online", pool).lastValue == 0)
            #expect(try metrics.expectGauge("kapsel_jobs_running", pool).lastValue == 0)
            #expect(try metrics.expectGauge("kapsel_jobs_waiting", pool).lastValue == 0)
        }
    }
}
