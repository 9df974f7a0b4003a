@testable import Kapsel
import Testing
@testable import KapselStress

#if canImport(Glibc)
import Glibc
#endif

/// The storm's rules for an outcome, on their own: what each fate allows, the run
/// limits, and collateral.
@Suite("The storm's verdicts")
struct StormVerdictTests {
    func job(_ fate: StormFate, crashRuns: Int = 1, retries: Int = 0, source: StormCase.Source = .submit) -> StormCase {
        StormCase(id: 5, source: source, fate: fate, crashRuns: crashRuns, retries: retries, usesSlot: false)
    }

    func value(_ value: Int = StormJob.expectedValue(id: 5, slotSum: 0)) -> Result<StormOutput, JobError> {
        .success(StormOutput(value: value))
    }

    func crashed(_ termination: ProcessTermination, pid: Int32 = 99, code: JobError.Code = .crashed) -> Result<StormOutput, JobError> {
        .failure(JobError(code, "died", jobType: "StormJob", daemon: DaemonIdentity(index: 0, instance: 1, pid: pid), termination: termination))
    }

    @Test func aValueMustBeTheJobsOwnAndComeFromOneRun() {
        #expect(StormReport.judge(job(.value), value(), runs: [10], deadly: []) == .expected)
        #expect(StormReport.judge(job(.value), value(3), runs: [10], deadly: []) == .violation("value 3"))
        #expect(StormReport.judge(job(.value), value(), runs: [], deadly: []) == .violation("a value without a run"))
        #expect(StormReport.judge(job(.value), value(), runs: [10, 11], deadly: []) == .violation("ran 2 times, more than 1"))
    }

    @Test func aFateThatStrikesEveryRunIsNeverSurvived() {
        let always = job(.crash(.segfault, .running), crashRuns: .max, retries: 2)
        #expect(StormReport.judge(always, value(), runs: [1, 2, 3], deadly: []) == .violation("survived its fate"))
        #expect(StormReport.judge(always, crashed(.signaled(signal: SIGSEGV)), runs: [1, 2, 3], deadly: []) == .expected)
        let once = job(.crash(.segfault, .running), crashRuns: 1, retries: 1)
        #expect(StormReport.judge(once, value(), runs: [1, 2], deadly: []) == .expected)
        #expect(StormReport.judge(once, value(), runs: [1], deadly: []) == .violation("a value on the run its fate strikes"))
    }

    @Test func aFailureMustBeTheFatesOwnUnlessAnotherJobKilledItsDaemon() {
        let abort = job(.crash(.abort, .encodingResult))
        #expect(StormReport.judge(abort, crashed(.signaled(signal: SIGABRT)), runs: [1], deadly: []) == .expected)
        #expect(StormReport.judge(abort, crashed(.exited(code: 3)), runs: [1], deadly: []) != .expected)
        #expect(StormReport.judge(job(.value), crashed(.signaled(signal: SIGKILL), pid: 42), runs: [42], deadly: [42]) == .collateral)
        #expect(StormReport.judge(job(.value), crashed(.signaled(signal: SIGKILL), pid: 42), runs: [42], deadly: [7]) != .collateral)
        #expect(StormReport.judge(job(.hang), crashed(.signaled(signal: SIGKILL), code: .timedOut), runs: [1], deadly: []) == .expected)
        #expect(StormReport.judge(job(.killedFromOutside), crashed(.signaled(signal: SIGKILL)), runs: [1], deadly: []) == .expected)
    }

    /// A call crashing its daemon while a job hangs there cuts the hang short: its retries
    /// run it again, and only then.
    @Test func aHangCutShortByAnotherJobsCrashRunsAgainOnItsRetries() {
        let hang = job(.hang, retries: 1)
        #expect(StormReport.judge(hang, crashed(.signaled(signal: SIGKILL), code: .timedOut), runs: [42, 43], deadly: [42]) == .expected)
        #expect(StormReport.judge(hang, crashed(.signaled(signal: SIGKILL), code: .timedOut), runs: [42, 43], deadly: []) == .violation("ran 2 times, more than 1"))
        #expect(StormReport.judge(job(.hang), crashed(.signaled(signal: SIGKILL), code: .timedOut), runs: [42, 43], deadly: [42]) == .violation("ran 2 times, more than 1"))
    }

    @Test func aMapItemMayRunAgainAloneAfterItsBatchDied() {
        let item = job(.value, retries: 1, source: .map)
        #expect(StormReport.judge(item, value(), runs: [1, 2, 3, 4], deadly: []) == .expected)
        #expect(StormReport.judge(item, value(), runs: [1, 2, 3, 4, 5], deadly: []) == .violation("ran 5 times, more than 4"))
    }

    @Test func aStormPlanIsTheSameForTheSameSeed() {
        var plan = StormPlan()
        plan.seed = 7
        let first = plan.cases().map { "\($0.fate) \($0.crashRuns) \($0.retries)" }
        #expect(first == plan.cases().map { "\($0.fate) \($0.crashRuns) \($0.retries)" })
        plan.seed = 8
        #expect(first != plan.cases().map { "\($0.fate) \($0.crashRuns) \($0.retries)" })
        #expect(Set(first).count > 20)
    }
}
