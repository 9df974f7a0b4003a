import Foundation
import Kapsel
import KapselArrow
import KapselR
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The R the tests embed: the machine's (`.ci/run` installs Debian's r-base-core).
enum TestR {
    static let runtime: RRuntime = try! RRuntime()
}

extension ProcessTests {
    @Suite("R embedded in a daemon: values, handles, errors, warnings, shared memory, isolation")
    struct RTests {
        func withSession<T>(daemons count: Int = 1, _ body: (Daemons, RSession) async throws -> T) async throws -> T {
            try await withTestDaemons(count) { daemons in
                let session = try await daemons.rSession(RSession.Configuration(runtime: TestR.runtime))
                return try await body(daemons, session)
            }
        }

        @Test func plainValuesCrossBothWaysWithNAsAndNames() async throws {
            try await withSession { _, r in
                #expect(try await r.eval("1 + 1").double == 2)
                #expect(try await r.eval("'héllo'").string == "héllo")
                #expect(try await r.eval("TRUE").bool == true)
                #expect(try await r.eval("NULL").value.isNull)
                let doubles = try await r.eval("c(a = 1.5, b = NA, c = NaN)").value
                #expect(doubles.names == ["a", "b", "c"])
                let values = try #require(doubles.doubleValues)
                #expect(values[0] == 1.5 && values[1] == nil && values[2]!.isNaN)
                #expect(try await r.eval("c(1L, NA, 3L)").value.doubleValues == [1, nil, 3])
                #expect(try await r.eval("c('x', NA)").value.strings == ["x", nil])
                #expect(try await r.eval("c(TRUE, NA, FALSE)").value.list == nil)
                let factor = try await r.eval("factor(c('lo', 'hi', NA, 'lo'), levels = c('lo', 'hi'))").value
                #expect(factor.strings == ["lo", "hi", nil, "lo"])
                let nested = try await r.eval("list(n = 1L, inner = list(s = 'a', v = c(2, 3)), empty = NULL)").value
                #expect(nested["n"]?.int == 1)
                #expect(nested["inner"]?["s"]?.string == "a")
                #expect(nested["inner"]?["v"]?.doubleValues == [2, 3])
                #expect(nested["empty"]?.isNull == true)
                // Into R and back.
                let echoed = try await r.call("identity", RValue.list([.integer([1, nil]), .character(["z"], names: ["k"]), .factor([2, 1], levels: ["a", "b"]), .logical([nil, true])], names: ["i", "s", "f", "l"])).value
                #expect(echoed["i"]?.doubleValues == [1, nil])
                #expect(echoed["s"]?.names == ["k"])
                #expect(echoed["f"]?.strings == ["b", "a"])
                #expect(try await r.call("class", RValue.factor([1], levels: ["only"])).string == "factor")
                #expect(try await r.call("paste", "a", "b", named: ["sep": "-"]).string == "a-b")
            }
        }

        @Test func anRErrorArrivesWithItsMessageCallAndTracebackAndWarningsComeWithResults() async throws {
            try await withSession { _, r in
                _ = try await r.eval("f <- function(x) g(x); g <- function(x) { warning('careful'); stop('boom: ', x) }")
                do {
                    _ = try await r.eval("f(3)")
                    Issue.record("an R error did not throw")
                } catch let error as JobError {
                    let rError = try #require(RError(error))
                    #expect(rError.kind == "simpleError")
                    #expect(rError.message == "boom: 3")
                    #expect(rError.call == "g(x)")
                    #expect(rError.traceback == ["f(3)", "g(x)", "stop(\"boom: \", x)"])
                }
                let result = try await r.eval("as.integer('x')")
                #expect(result.value.doubleValues == [nil])
                #expect(result.warnings == ["NAs introduced by coercion"])
                do {
                    _ = try await r.eval("1 +")
                    Issue.record("a parse error did not throw")
                } catch let error as JobError {
                    #expect(RError(error)?.kind == "ParseError")
                }
                do {
                    _ = try await r.call("stats::nosuchfunction", 1)
                    Issue.record("a missing function did not throw")
                } catch let error as JobError {
                    #expect(RError(error)?.kind == "NoSuchFunction")
                }
                // The session goes on.
                #expect(try await r.eval("2 * 21").int == 42)
            }
        }

        @Test func objectsStayInRBehindHandlesAndAreReleasedWhenDropped() async throws {
            try await withSession { _, r in
                try await useAFit(r)
                var remaining = try await r.objectCount()
                for _ in 0..<100 where remaining != 0 {
                    try await Task.sleep(for: .milliseconds(50))
                    remaining = try await r.objectCount()
                }
                #expect(remaining == 0, "dropping the handles releases the objects in R")
            }
        }

        /// Works with an `lm` fit through handles, all dropped on return.
        private func useAFit(_ r: RSession) async throws {
            let fit = try await r.call("lm", RFormula("dist ~ speed"), named: ["data": RValue.call("get", "cars")])
            let handle = try #require(fit.object)
            #expect(try await handle.type == "lm")
            #expect(try await r.objectCount() == 1)
            let coefficients = try await r.call("coef", fit).value
            #expect(coefficients.names == ["(Intercept)", "speed"], "a handle goes back to R as its object")
            #expect(abs((coefficients.doubleValues?[1] ?? 0) - 3.932409) < 1e-6)
            let printed = try await fit.string()
            #expect(printed.contains("Coefficients:"))
            #expect(try await handle.attribute("class").string == "lm")
            let summary = try await handle.call("summary")
            #expect(try await summary.object?.type == "summary.lm")
            #expect(try await r.objectCount() == 2)
        }

        @Test func aModuleProxyCallsThePackagesFunctionsWithNamedArguments() async throws {
            try await withSession { _, r in
                let stats = r.module("stats")
                let quantile = try await stats.qnorm(0.975).double
                #expect(abs((quantile ?? 0) - 1.959964) < 1e-6)
                let rounded = try await r.module("base").round(2.675, digits: 2).double
                #expect(rounded == 2.67)
                do {
                    _ = try await r.module("nosuchpackage").f()
                    Issue.record("a missing package did not throw")
                } catch let error as JobError {
                    #expect(RError(error)?.message.contains("nosuchpackage") == true)
                }
            }
        }

        @Test func aTableReachesRAsADataFrameAndOneComesBackAsATable() async throws {
            try await withSession { _, r in
                let table = try SharedTable([
                    .primitive("x", [1.5, 2.5, 3.5]), .primitive("n", [Int32(1), nil, 3]), .utf8("name", ["a", nil, "c"]), .bool("flag", [true, false, nil]),
                ])
                let summary = try await r.call("sapply", table, "class").value
                #expect(summary.strings == ["numeric", "integer", "character", "logical"])
                #expect(try await r.call("sum", RValue.call("getElement", table, "x")).double == 7.5)
                #expect(try await r.call("nrow", table).int == 3)
                let back = try await r.eval("data.frame(d = c(1, NA), i = c(2L, NA), s = c('p', NA), f = factor(c('u', 'v')), l = c(NA, TRUE))").value
                let frame = try #require(back.table)
                #expect(frame.rowCount == 2)
                #expect(frame.columns.map(\.name) == ["d", "i", "s", "f", "l"])
                #expect(frame["d"]?.value(0, as: Double.self) == 1 && frame["d"]?.isNull(1) == true)
                #expect(frame["i"]?.value(0, as: Int32.self) == 2 && frame["i"]?.isNull(1) == true)
                #expect(frame["s"]?.string(0) == "p" && frame["s"]?.isNull(1) == true)
                #expect(frame["f"]?.string(1) == "v")
                #expect(frame["l"]?.isNull(0) == true && frame["l"]?.bool(1) == true)
            }
        }

        /// 100 MB into R with no copy (R sums the shared memory where it lies) and 100 MB
        /// out with one (straight from R's memory into shared memory).
        @Test func aHundredMegabyteMatrixCrossesWithNoCopyInAndOneOut() async throws {
            try await withSession { daemons, r in
                let rows = 2_500, columns = 5_000   // 12.5 million doubles: 100 MB
                var matrix = try SharedTensor<Double>(shape: [rows, columns], layout: .columnMajor)
                matrix.withUnsafeMutableBufferPointer { values in
                    for index in values.indices { values[index] = Double(index % 1000) }
                }
                _ = try await r.eval("invisible(gc())")
                let before = try await daemons.submit(DaemonMemory()).value
                let sums = try await r.call("colSums", matrix).tensor()
                let dimensions = try await r.call("dim", matrix).value.doubleValues
                let after = try await daemons.submit(DaemonMemory()).value
                #expect(dimensions == [Double(rows), Double(columns)], "R sees it column-major, with its dimensions")
                #expect(sums.elementCount == columns)
                #expect(sums[0] == (0..<rows).reduce(0.0) { $0 + Double($1 % 1000) })
                let growthMB = (after.residentAnonymousKB - before.residentAnonymousKB) / 1024
                #expect(growthMB < 32, "R summed 100 MB where it lies; the daemon's private memory grew \(growthMB) MB")

                // A row-major tensor reaches R as its transpose, also in place.
                let rowMajor = try SharedTensor<Double>(try SharedArray((0..<6).map(Double.init)), shape: [2, 3], layout: .rowMajor)
                #expect(try await r.call("dim", rowMajor).value.doubleValues == [3, 2])
                #expect(try await r.call("getElement", rowMajor, 2).double == 1, "element [1, 0] of the transpose is element [0, 1]")

                // R writes to a vector it was given: it gets its own copy; the memory stays as it was.
                _ = try await r.call("assign", "kept", matrix, named: ["envir": RValue.call("globalenv")])
                _ = try await r.eval("invisible(gc())")
                #expect(try await r.sharedVectorCount() == 1, "R holds the vector")
                #expect(try await r.eval("kept[1, 1] <- -1; kept[1, 1]").double == -1)
                #expect(matrix[0, 0] == 0)
                _ = try await r.eval("rm(kept, envir = globalenv()); invisible(gc())")
                #expect(try await r.sharedVectorCount() == 0, "the memory is let go when R's last reference is collected")

                // Out of R: one copy into shared memory, nothing more on the way to the host.
                let hostBefore = MemoryUsage.current()
                let made = try await r.eval("matrix(as.double(seq_len(12500000) %% 7), nrow = 2500)").tensor()
                let hostGrowthMB = (MemoryUsage.current().residentAnonymousKB - hostBefore.residentAnonymousKB) / 1024
                #expect(hostGrowthMB < 32, "the host maps the copy R's value went into; its private memory grew \(hostGrowthMB) MB")
                #expect(made.shape == [2500, 5000])
                #expect(made.layout == .columnMajor)
                #expect(made[3, 1] == Double((1 * 2500 + 3 + 1) % 7))
            }
        }

        @Test func aSegfaultInRIsTheDaemonsCrashNotTheHosts() async throws {
            try await withSession { daemons, r in
                let pid = daemons.status().daemons[0].pid
                do {
                    _ = try await r.eval("tools::pskill(Sys.getpid(), 11L)")
                    Issue.record("the segfault did not end the call")
                } catch let error as JobError {
                    #expect(error.code == .crashed)
                    #expect(error.termination == .signaled(signal: SIGSEGV))
                }
                #expect(await eventually { daemons.status().daemons[0].online && daemons.status().daemons[0].pid != pid })
                let fresh = try await daemons.rSession(RSession.Configuration(runtime: TestR.runtime))
                #expect(try await fresh.eval("1 + 2").int == 3)
            }
        }

        @Test func quitEndsOnlyTheDaemon() async throws {
            try await withSession { daemons, r in
                do {
                    _ = try await r.eval("quit(status = 3)")
                    Issue.record("quit did not end the call")
                } catch let error as JobError {
                    #expect(error.code == .crashed)
                    #expect(error.termination == .exited(code: 3))
                }
                #expect(await eventually { daemons.status().daemons[0].online })
            }
        }

        @Test func aCallPastItsTimeLimitInterruptsRAndTheSessionGoesOn() async throws {
            try await withSession { daemons, r in
                let pid = daemons.status().daemons[0].pid
                let clock = ContinuousClock()
                let start = clock.now
                let outcome: Result<RResult, any Error> = await KapselActorSystem.$callTimeout.withValue(.milliseconds(300)) {
                    do { return .success(try await r.eval("repeat {}")) } catch { return .failure(error) }
                }
                #expect((outcome.error as? JobError)?.code == .timedOut)
                #expect(clock.now - start < .seconds(5))
                // R was interrupted, not killed: the same daemon answers, and the session's state is there.
                _ = try await r.eval("x <- 41")
                #expect(try await r.eval("x + 1").int == 42)
                #expect(daemons.status().daemons[0].pid == pid)
                #expect(daemons.status().daemons[0].instance == 1)
            }
        }

        @Test func environmentsHaveTheirOwnPackagesAndSwitchingRestartsTheDaemon() async throws {
            let root = temporaryPath("r-environments")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let tarball = try buildTestRPackage(into: root + "/build")
            let withPackage = try REnvironment("with-probe", runtime: TestR.runtime, root: root)
            let without = try REnvironment("without-probe", runtime: TestR.runtime, root: root)
            try await withPackage.install(packageAt: tarball)
            #expect(withPackage.packages == ["kapselprobe"])
            #expect(without.packages.isEmpty)
            try await withTestDaemons(1) { daemons in
                let first = try await daemons.rSession(withPackage.sessionConfiguration, on: .daemon(0))
                #expect(try await first.module("kapselprobe").probe().string == "probe 1.0")
                #expect(try await first.eval(".libPaths()[1]").string == withPackage.library)
                // The other environment needs a fresh R: the daemon is restarted for it.
                let second = try await daemons.rSession(without.sessionConfiguration, on: .daemon(0))
                #expect(daemons.status().daemons[0].instance == 2)
                #expect(try await second.eval("requireNamespace('kapselprobe', quietly = TRUE)").bool == false)
            }
            // The runtime's own library was not written to.
            #expect(!FileManager.default.fileExists(atPath: TestR.runtime.home + "/library/kapselprobe"))
        }

        @Test func inProcessModeRunsRInTheHostItself() async throws {
            try await withTestDaemons(1) { daemons in
                let local = try await daemons.rSession(RSession.Configuration(runtime: TestR.runtime), inProcess: true)
                #expect(try await local.eval("Sys.getpid()").int == Int(getpid()), "R runs in this process")
                let remote = try await daemons.rSession(RSession.Configuration(runtime: TestR.runtime))
                #expect(try await remote.eval("Sys.getpid()").int != Int(getpid()))
            }
        }
    }
}

/// Builds the one-function test package `kapselprobe` with `R CMD build` (no network);
/// returns the path of its source tarball.
func buildTestRPackage(into directory: String) throws -> String {
    let source = directory + "/kapselprobe"
    try FileManager.default.createDirectory(atPath: source + "/R", withIntermediateDirectories: true)
    try """
        Package: kapselprobe
        Version: 1.0
        Title: Kapsel's Test Package
        Description: A function for Kapsel's tests of R environments.
        License: MIT
        Authors@R: person("Kapsel", "Tests", email = "tests@example.invalid", role = c("aut", "cre"))
        """.write(toFile: source + "/DESCRIPTION", atomically: true, encoding: .utf8)
    try "export(probe)\n".write(toFile: source + "/NAMESPACE", atomically: true, encoding: .utf8)
    try "probe <- function() paste(\"probe\", utils::packageVersion(\"kapselprobe\"))\n".write(toFile: source + "/R/probe.R", atomically: true, encoding: .utf8)
    let outcome = try runProcess(TestR.runtime.home + "/bin/R", arguments: ["CMD", "build", "--no-manual", "--no-build-vignettes", source],
                                 environment: ["PATH": "/usr/bin:/bin", "HOME": directory], workingDirectory: directory)
    guard outcome.status == 0 else { throw RError("BuildError", outcome.output) }
    return directory + "/kapselprobe_1.0.tar.gz"
}
