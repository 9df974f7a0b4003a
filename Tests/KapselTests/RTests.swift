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
    }
}
