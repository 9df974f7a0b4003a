/// Runs R's actors — sessions and object handles — on R's own thread, so that their
/// methods call into R with no thread hop on the way in or out.
final class RExecutor: SerialExecutor {
    /// The executor of the process's R thread.
    static let shared = RExecutor()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        RThread.shared.submit { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func checkIsolated() {
        precondition(RThread.shared.isCurrent, "not on R's thread")
    }
}
