import Foundation
import Kapsel
import KapselArrow
import KapselR
import Testing

extension ProcessTests {
    /// The workload Kapsel's R users come for: a real brms model, compiled by Stan and
    /// sampled in a daemon, called from Swift, its draws back in shared memory.
    @Suite("A real brms fit from Swift")
    struct BrmsTests {
        @Test func aPoissonModelFitsAndItsDrawsAreWhatRReports() async throws {
            // Stan's C++ compiles in about half the time at -O1 on two cores.
            let makevars = temporaryPath("Makevars")
            try "CXXFLAGS = -O1\nCXX14FLAGS = -O1\nCXX17FLAGS = -O1\n".write(toFile: makevars, atomically: true, encoding: .utf8)
            defer { unlink(makevars) }
            try await withTestDaemons(1, configure: { $0.environment["R_MAKEVARS_USER"] = makevars }) { daemons in
                let r = try await daemons.rSession(RSession.Configuration(runtime: TestR.runtime))
                let brms = r.module("brms")
                let epilepsy = try #require(try await r.eval("brms::epilepsy").table, "a data frame comes back as a table")
                #expect(epilepsy.rowCount == 236)
                let fit = try await brms.brm(
                    RFormula("count ~ zAge + (1 | patient)"), data: epilepsy, family: .call("poisson"),
                    chains: 2, iter: 300, warmup: 150, refresh: 0, seed: 1, silent: 2
                )
                #expect(try await fit.object?.type == "brmsfit")

                let draws = try await r.call("as.matrix", fit).tensor()
                #expect(draws.shape.count == 2 && draws.shape[0] == 300, "2 chains × 150 draws after warm-up")
                #expect(draws.layout == .columnMajor)
                let names = try #require(try await r.call("colnames", RValue.call("as.matrix", fit)).value.strings)
                #expect(names.prefix(3) == ["b_Intercept", "b_zAge", "sd_patient__Intercept"])
                // What R itself computes from the same fit, against the draws Swift got.
                let means = try #require(try await r.call("colMeans", RValue.call("as.matrix", fit)).value.doubleValues)
                #expect(means.count == draws.shape[1])
                for column in 0..<draws.shape[1] {
                    let mean = (0..<draws.shape[0]).reduce(0.0) { $0 + draws[$1, column] } / Double(draws.shape[0])
                    #expect(abs(mean - (means[column] ?? .nan)) < 1e-9, "column \(column): \(mean) in Swift, \(means[column] ?? .nan) in R")
                }
                let slope = (0..<draws.shape[0]).reduce(0.0) { $0 + draws[$1, 1] } / Double(draws.shape[0])
                #expect(abs(slope) < 0.5, "zAge has a small effect on the counts")

                let summary = try await r.call("summary", fit).string()
                #expect(summary.contains("Family: poisson"))
                #expect(summary.contains("zAge"))
            }
        }
    }
}
