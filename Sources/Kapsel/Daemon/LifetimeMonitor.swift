import NIOCore
import Synchronization

/// Decides when a daemon retires (`DaemonLifetime`): counts its jobs, watches the clock
/// and how long it has been idle, and tells the host once. Jobs finish on any thread and
/// the checks run on a timer loop: the counts are behind a lock.
final class LifetimeMonitor: Sendable {
    private struct State: ~Copyable {
        var jobsDone = 0
        var lastActivity = NIODeadline.now()
        /// Why the daemon retires, once it has said so.
        var retiring: DaemonExitCode?
        var task: RepeatedTask?
        var isIdle: @Sendable () -> Bool = { false }
        var announce: @Sendable (DaemonExitCode) -> Void = { _ in }
    }

    private let lifetime: DaemonLifetime
    private let started = NIODeadline.now()
    private let state = Mutex(State())

    init(_ lifetime: DaemonLifetime) {
        self.lifetime = lifetime
    }

    /// Starts watching on `loop`: `isIdle` says whether the daemon has neither a job nor
    /// an actor; `announce` tells the host the daemon retires.
    func start(on loop: any EventLoop, isIdle: @escaping @Sendable () -> Bool, announce: @escaping @Sendable (DaemonExitCode) -> Void) {
        let shortest = [lifetime.idleTime, lifetime.wallTime].compactMap { $0 }.min() ?? .seconds(1)
        let period = TimeAmount(min(max(shortest / 4, .milliseconds(10)), .seconds(1)))
        let task = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { [self] _ in check() }
        state.withLock { state in
            state.isIdle = isIdle
            state.announce = announce
            state.task = task
        }
    }

    /// A job arrived.
    func jobArrived() {
        state.withLock { $0.lastActivity = .now() }
    }

    /// A job finished.
    func jobFinished() {
        state.withLock { state in
            state.jobsDone += 1
            state.lastActivity = .now()
        }
        check()
    }

    /// Stops watching (the connection closed).
    func stop() {
        state.withLock { $0.task.take() }?.cancel()
    }

    private func check() {
        let (jobsDone, lastActivity, isIdle) = state.withLock { state -> (Int, NIODeadline, (@Sendable () -> Bool)?) in
            (state.jobsDone, state.lastActivity, state.retiring == nil ? state.isIdle : nil)
        }
        guard let isIdle else { return }
        let now = NIODeadline.now()
        let code: DaemonExitCode? = if let maxJobs = lifetime.maxJobs, jobsDone >= maxJobs {
            .maxJobs
        } else if let wallTime = lifetime.wallTime, now - started >= TimeAmount(wallTime) {
            .wallTime
        } else if let idleTime = lifetime.idleTime, now - lastActivity >= TimeAmount(idleTime), isIdle() {
            .idle
        } else {
            nil
        }
        guard let code else { return }
        let announce = state.withLock { state -> (@Sendable (DaemonExitCode) -> Void)? in
            guard state.retiring == nil else { return nil }
            state.retiring = code
            return state.announce
        }
        guard let announce else { return }
        stop()
        announce(code)
    }
}
