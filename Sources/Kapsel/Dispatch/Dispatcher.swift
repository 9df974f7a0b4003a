import KapselWire
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The dispatcher of a `Daemons` pool: the state machine behind a lock, and the code
/// that carries out its actions once the lock is released.
///
/// It is called from any thread: `submit` from user tasks, connection events from
/// NIO event loops, process exits from the supervisor thread, timers from an event
/// loop. A daemon's answer is handled on its connection's event loop, and the next
/// job for that daemon is written from there in the same step, with no thread hop.
final class Dispatcher: Sendable {
    private let state: Mutex<DispatcherState>
    private let nextJobID = Atomic<UInt64>(1)
    /// Resolutions carried out, and attempts to resolve a job that had already
    /// resolved (always 0 unless the exactly-once invariant is broken): for tests.
    let resolutions = Atomic<Int>(0)
    let repeatedResolutions = Atomic<Int>(0)
    /// Set by `start`, once the host listens and launchers know where daemons connect.
    private let launcher = Mutex<(any SlotLauncher)?>(nil)
    private let timerLoop: any EventLoop
    /// Where the pool's events are logged and counted.
    let observer: PoolObserver
    /// Timers that may be cancelled (`TimerEvent.isCancellable`), until they fire or are.
    private let timers = Mutex<[TimerEvent: Scheduled<Void>]>([:])

    init(state: DispatcherState, timerLoop: any EventLoop, observer: PoolObserver = PoolObserver(name: "default", logger: nil, metrics: nil)) {
        self.state = Mutex(state)
        self.timerLoop = timerLoop
        self.observer = observer
    }

    /// Launches the first daemon of every slot with `launcher`, which also launches
    /// their replacements.
    func start(launching launcher: any SlotLauncher) {
        self.launcher.withLock { $0 = launcher }
        perform { $0.start() }
    }

    /// Runs one event of the state machine and carries out the actions it returns.
    /// What it sends or closes is queued on its links before the lock is released, so
    /// each daemon gets its messages in the order the state machine decided them.
    func perform(_ event: (inout DispatcherState) -> [DispatcherAction]) {
        let actions = state.withLock { state in
            var actions = event(&state)
            if state.awaitsDrain { actions += state.drainedActions() }
            for action in actions {
                switch action {
                case .send(let link, let message), .queue(let link, let message): link.enqueue(message)
                case .close(let link): link.enqueueClose()
                default: break
                }
            }
            return actions
        }
        // What goes to daemons first, each link written once, then the rest (resolving
        // handles runs their waiters' code): a daemon gets its next jobs before the
        // answers that freed it are handed out.
        var flushed: [any DaemonLink] = []
        for action in actions {
            switch action {
            case .send(let link, _), .close(let link):
                guard !flushed.contains(where: { $0 === link }) else { continue }
                flushed.append(link)
                link.flush()
            default:
                continue
            }
        }
        for action in actions { execute(action) }
    }

    /// What the pool's gauges show now.
    func figures() -> PoolFigures {
        var links: [any DaemonLink] = []
        var figures = state.withLock { state in
            var figures = PoolFigures(online: 0, waiting: state.jobs.waiting.count, running: 0, lentBytes: 0)
            for slot in state.slots.all {
                figures.running += slot.inFlight.count
                if slot.isOnline { figures.online += 1 }
                if let link = slot.link { links.append(link) }
            }
            return figures
        }
        // Read outside the dispatcher's lock: each link has a lock of its own.
        for link in links { figures.lentBytes += link.lentSharedMemoryBytes }
        return figures
    }

    /// Reads the state without changing it.
    func inspect<R>(_ body: (borrowing DispatcherState) -> R) -> R {
        state.withLock { body($0) }
    }

    /// A fresh job id.
    func makeJobID() -> UInt64 {
        nextJobID.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    private func execute(_ action: DispatcherAction) {
        switch action {
        case .send, .queue, .close:
            // Written before the other actions (`perform`), or with the link's next write.
            break
        case .resolve(let resolver, let outcome):
            if resolver.resolve(outcome) {
                resolutions.add(1, ordering: .relaxed)
            } else {
                repeatedResolutions.add(1, ordering: .relaxed)
            }
        case .launch(let slot, let instance, let token):
            launcher.withLock { $0 }?.launch(slot: slot, instance: instance, token: token, dispatcher: self)
        case .signal(let pid, let signal):
            ProcessSupervisor.shared.signal(pid, signal)
        case .schedule(let event, let delay) where event.isCancellable:
            // Scheduled under the table's lock, so that a timer firing at once finds
            // itself in the table. One cancelled before it is kept here (its job ended
            // that fast) fires later and finds nothing to do.
            timers.withLock { timers in
                timers[event] = timerLoop.scheduleTask(in: TimeAmount(delay)) {
                    self.timers.withLock { _ = $0.removeValue(forKey: event) }
                    self.perform { $0.timerFired(event) }
                }
            }
        case .schedule(let event, let delay):
            timerLoop.scheduleTask(in: TimeAmount(delay)) {
                self.perform { $0.timerFired(event) }
            }
        case .cancelTimer(let event):
            timers.withLock { $0.removeValue(forKey: event) }?.cancel()
        case .resumeReadiness(let waiters, let result):
            for waiter in waiters { waiter.resume(with: result.mapError { $0 as any Error }) }
        case .resumeStopped(let waiters), .resumeDrained(let waiters):
            for waiter in waiters { waiter.resume() }
        case .observe(let event):
            observer.observe(event)
        }
    }

    /// Waits until every daemon is online; throws if one cannot start or `limit` passes.
    func waitUntilReady(limit: Duration) async throws {
        let timer = timerLoop.scheduleTask(in: TimeAmount(limit)) {
            self.perform { $0.startupTimedOut(after: limit) }
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { continuation in
            perform { $0.awaitReadiness(continuation) }
        }
    }

    /// Takes no more jobs, and returns once those submitted have resolved, or `grace` passed.
    func drain(grace: Duration) async {
        perform { $0.stopAccepting() }
        let limit = timerLoop.scheduleTask(in: TimeAmount(grace)) {
            self.perform { $0.drainTimedOut() }
        }
        await withCheckedContinuation { continuation in
            perform { $0.awaitDrained(continuation) }
        }
        limit.cancel()
    }

    /// Stops every daemon: a graceful shutdown, then SIGKILL for any process still
    /// alive after `grace`. Returns once every daemon process has been reaped.
    func stop(grace: Duration) async {
        perform { $0.stop() }
        let killer = timerLoop.scheduleTask(in: TimeAmount(grace)) {
            self.perform { $0.killRemaining() }
        }
        await withCheckedContinuation { continuation in
            perform { $0.awaitStopped(continuation) }
        }
        killer.cancel()
    }
}

/// Starts daemon processes for a dispatcher's slots.
protocol SlotLauncher: Sendable {
    /// Starts the process for `slot`; reports `launched` and `processExited` to `dispatcher`.
    func launch(slot: Int, instance: Int, token: String, dispatcher: Dispatcher)
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
