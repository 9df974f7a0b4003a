import Testing
@testable import Kapsel

/// Batches of a map or a prefetch on daemons hold about 4 ms of work, grow at most
/// fourfold at a time, and never pass their limit.
@Suite("Batch sizes")
struct BatchSizerTests {
    @Test func jobsOfAboutAMillisecondGoFourToABatch() {
        var sizer = BatchSizer(limit: 4)
        #expect(sizer.size == 1)
        // 1.03 ms a job: 3.9 jobs make 4 ms, which is four jobs, not three.
        sizer.record(runTime: .microseconds(1_030), count: 1)
        #expect(sizer.size == 4)
        sizer.record(runTime: .microseconds(4_120), count: 4)
        #expect(sizer.size == 4)
    }

    @Test func shortJobsGrowFourfoldUpToTheLimit() {
        var sizer = BatchSizer(limit: 40)
        var sizes: [Int] = []
        for _ in 0..<4 {
            sizer.record(runTime: .microseconds(10 * sizer.size), count: sizer.size)
            sizes.append(sizer.size)
        }
        #expect(sizes == [4, 16, 40, 40])
    }

    @Test func longJobsStayOneToABatch() {
        var sizer = BatchSizer(limit: 64)
        sizer.record(runTime: .milliseconds(50), count: 1)
        #expect(sizer.size == 1)
    }
}
