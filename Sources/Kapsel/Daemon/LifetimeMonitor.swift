import NIOCore

/// Decides when a daemon retires (`DaemonLifetime`): counts its jobs, watches the clock
/// and how long it has been idle, and tells the host once. Confined to the connection's
/// event loop.
final class LifetimeMonitor {
    private let lifetime: DaemonLifetime
    private let started = NIODeadline.now()
    private var jobsDone = 0
    private var lastActivity = NIODeadline.now()
    /// Why the daemon retires, once it has said so.
    private(set) var retiring: DaemonExitCode?
    private var task: RepeatedTask?
    private var isIdle: () -> Bool = { false }
    private var announce: (DaemonExitCode) -> Void = { _ in }

    init(_ lifetime: DaemonLifetime) {
        self.lifetime = lifetime
    }

    /// Starts watching on `loop`: `isIdle` says whether the daemon has neither a job nor
    /// an actor; `announce` tells the host the daemon retires.
    func start(on loop: any EventLoop, isIdle: @escaping () -> Bool, announce: @escaping (DaemonExitCode) -> Void) {
        self.isIdle = isIdle
        self.announce = announce
        let shortest = [lifetime.idleTime, lifetime.wallTime].compactMap { $0 }.min() ?? .seconds(1)
        let period = TimeAmount(min(max(shortest / 4, .milliseconds(10)), .seconds(1)))
        let bound = NIOLoopBound(self, eventLoop: loop)
        task = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in bound.value.check() }
    }

    /// A job arrived.
    func jobArrived() {
        lastActivity = .now()
    }

    /// A job finished.
    func jobFinished() {
        jobsDone += 1
        lastActivity = .now()
        check()
    }

    /// Stops watching (the connection closed).
    func stop() {
        task?.cancel()
        task = nil
    }

    private func check() {
        guard retiring == nil else { return }
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
        retiring = code
        stop()
        announce(code)
    }
}
