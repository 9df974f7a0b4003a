import Foundation
import Kapsel
import KapselStress
import KapselTestJobs
import Testing

extension ProcessTests {
    @Suite("The crash storm")
    struct StormTests {
        /// 3,000 jobs through submit, map and actor calls on 3 daemons; a tenth die, every
        /// way. The seed is printed: `KAPSEL_STORM_SEED=<seed>` replays a storm.
        @Test func aStormOfJobsThatDieEveryWayResolvesEachOnceAsItsFateSays() async throws {
            let directory = temporaryPath("storm")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var plan = StormPlan()
            plan.options = testOptions()
            plan.seed = ProcessInfo.processInfo.environment["KAPSEL_STORM_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64.max)
            let report = try await Storm.run(plan, directory: directory)
            print(report)
            #expect(report.passed, "\(report)")
            #expect(report.unresolved == 0 && report.violations.isEmpty && report.repeatedResolutions == 0)
            #expect(report.jobsBySource == ["submit": 1_800, "map": 800, "actor": 400])
            #expect(report.jobsByFate.count == StormFate.fatal.count + 1, "every fate came up: \(report.jobsByFate.keys.sorted())")
            #expect(report.daemonsDied > 150, "\(report.daemonsDied) daemons died")
            #expect(report.outcomes["value", default: 0] > 2_500)
        }
    }
}
