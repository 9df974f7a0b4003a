import DequeModule
import KapselSharedMemory

/// The daemon slots of a pool: where each slot's daemon is in its life, what it was
/// sent, and its counters over all its instances.
///
/// A slot keeps its index for the life of the pool; the daemons that hold it come and
/// go (`instance` grows with each). Each state carries what exists only in it — a
/// connection only while online, a process only once launched — so no field is set
/// in a state where it means nothing.
struct SlotTable {
    /// A daemon process the host started for a slot.
    struct LaunchedProcess {
        let pid: Int32
        /// The descriptor channel to it for shared memory (nil: its memory is streamed).
        let descriptors: DescriptorChannel?
    }

    /// Why the host ended a daemon itself, so that its exit is not counted as a crash.
    enum KillCause: Equatable {
        /// It held a cancelled job past the grace.
        case unresponsive
        /// Its connection broke or misbehaved.
        case connectionFailed(String)
    }

    /// What the host knows of why a daemon is on its way out.
    struct Departure {
        /// Set when the host killed it or closed its connection.
        var killCause: KillCause?
        /// Set when the daemon said it retires; it gets no more work.
        var retiring: DaemonExitCode?
        /// Set when its process ended while its connection was still open: the slot ends
        /// once the host has read what the connection still holds (results the daemon
        /// wrote before it died), so the job that was running is the one blamed.
        var exit: (termination: ProcessTermination, output: String?)?
    }

    /// Where one slot's daemon is in its life.
    enum State {
        /// A process was asked for (and runs, once `process` is known), or, for a daemon
        /// deployed by hand, a daemon with the slot's token is awaited. `timedOut`: the
        /// launch did not connect in time and is being stopped.
        case starting(LaunchedProcess?, timedOut: Bool = false)
        /// Authenticated and connected.
        case online(link: any DaemonLink, process: LaunchedProcess?, departure: Departure)
        /// Its connection closed and its process has not been reaped yet (`process` is nil
        /// while the launch has not reported it, or for a daemon deployed by hand).
        case closing(process: LaunchedProcess?, departure: Departure)
        /// Its daemon retired for want of work; one starts again when jobs wait for it.
        case parked
        /// Given up after failing to start too often.
        case failed
        /// Its daemon is gone and the pool is stopping.
        case stopped
    }

    /// One slot.
    struct Slot {
        let index: Int
        var instance = 0
        var state = State.starting(nil)
        /// The launch token of the current instance (a daemon deployed by hand keeps its
        /// slot's token for the life of the pool).
        var token = ""
        /// Sent and not yet answered, in send order; the daemon runs them in that order.
        var inFlight: Deque<UInt64> = []
        /// How long its jobs take, and so how many it may hold at once (dispatcher mode).
        var pace = SlotPace()
        /// Waiting for this slot only: setup jobs, and round-robin assignments.
        var pinned: Deque<UInt64> = []
        var assigned = 0
        var complete = 0
        var crashed = 0
        /// Failed starts in a row.
        var startFailures = 0
        var lastFailure: String?
        /// The resource manager's job the current daemon runs in, as it said when it connected.
        var batchJob: String?

        /// The connection, while online.
        var link: (any DaemonLink)? {
            if case .online(let link, _, _) = state { link } else { nil }
        }

        /// The process, once launched and until reaped.
        var process: LaunchedProcess? {
            switch state {
            case .starting(let process, _): process
            case .online(_, let process, _): process
            case .closing(let process, _): process
            case .parked, .failed, .stopped: nil
            }
        }

        /// Why the daemon is leaving, as far as the host knows.
        var departure: Departure {
            switch state {
            case .online(_, _, let departure), .closing(_, let departure): departure
            case .starting, .parked, .failed, .stopped: Departure()
            }
        }

        var isOnline: Bool {
            if case .online = state { true } else { false }
        }

        var isStarting: Bool {
            if case .starting = state { true } else { false }
        }

        var isParked: Bool {
            if case .parked = state { true } else { false }
        }

        var hasFailed: Bool {
            if case .failed = state { true } else { false }
        }

        var isStopped: Bool {
            if case .stopped = state { true } else { false }
        }

        /// Online, not retiring, and so open for work.
        var acceptsWork: Bool {
            if case .online(_, _, let departure) = state { departure.retiring == nil && departure.exit == nil } else { false }
        }

        /// Online, open for work and holding nothing.
        var isIdle: Bool { acceptsWork && inFlight.isEmpty }

        /// Whether its launch ran out of time.
        var launchTimedOut: Bool {
            if case .starting(_, true) = state { true } else { false }
        }

        /// What the slot is doing, for `status()`.
        var phase: DaemonStatus.Phase {
            switch state {
            case .starting: .launching
            case .online(_, _, let departure): departure.retiring == nil ? .online : .retiring
            case .closing: .retiring
            case .parked: .parked
            case .failed: .failed
            case .stopped: .stopped
            }
        }

        var identity: DaemonIdentity { DaemonIdentity(index: index, instance: instance, pid: process?.pid) }

        /// Records why the daemon leaves, once (the first cause is the one reported).
        mutating func noteKill(_ cause: KillCause) {
            switch state {
            case .online(let link, let process, var departure) where departure.killCause == nil:
                departure.killCause = cause
                state = .online(link: link, process: process, departure: departure)
            case .closing(let process, var departure) where departure.killCause == nil:
                departure.killCause = cause
                state = .closing(process: process, departure: departure)
            default:
                break
            }
        }

        /// Records that the daemon's process ended while its connection is open.
        mutating func noteExit(_ termination: ProcessTermination, output: String?) {
            guard case .online(let link, let process, var departure) = state else { return }
            departure.exit = (termination, output)
            state = .online(link: link, process: process, departure: departure)
        }

        /// Records that the daemon retires with `code`.
        mutating func noteRetiring(_ code: DaemonExitCode) {
            guard case .online(let link, let process, var departure) = state else { return }
            departure.retiring = code
            state = .online(link: link, process: process, departure: departure)
        }
    }

    /// Every slot, by index.
    private(set) var all: [Slot]
    /// Launch tokens not presented yet, to their all.
    private var tokens: [String: Int] = [:]
    private var roundRobinNext = 0
    /// Authenticated connections open now.
    private(set) var connections = 0

    init(count: Int) {
        all = (0..<count).map { Slot(index: $0) }
    }

    var indices: Range<Int> { all.indices }
    var count: Int { all.count }

    /// The slot `index`, read in place (a copy of a slot would retain every reference
    /// it holds, on the dispatcher's hottest path).
    subscript(index: Int) -> Slot {
        _read { yield all[index] }
        _modify { yield &all[index] }
    }

    /// Whether every slot satisfies `condition`.
    func allSatisfy(_ condition: (Slot) -> Bool) -> Bool {
        all.allSatisfy(condition)
    }

    /// Starts a new instance in `index`, awaiting a daemon that presents `token`.
    mutating func relaunch(_ index: Int, token: String) {
        all[index].instance += 1
        all[index].state = .starting(nil)
        all[index].token = token
        all[index].batchJob = nil
        tokens[token] = index
    }

    /// The launch of `index` ran out of time: it is stopped, and its end counts as a failed start.
    mutating func launchTimedOut(_ index: Int) {
        guard case .starting(let process, _) = all[index].state else { return }
        all[index].state = .starting(process, timedOut: true)
    }

    /// The slot whose starting daemon holds `token`, which is used up.
    mutating func claim(token: String) -> Int? {
        guard let index = tokens[token], all[index].isStarting, all[index].token == token else { return nil }
        tokens.removeValue(forKey: token)
        return index
    }

    /// The token of `index` can no longer be presented.
    mutating func revokeToken(of index: Int) {
        tokens.removeValue(forKey: all[index].token)
    }

    /// The slot's daemon, running in a resource manager's `batchJob` (if it does), is
    /// connected through `link`.
    mutating func connect(_ index: Int, link: any DaemonLink, batchJob: String?) {
        all[index].state = .online(link: link, process: all[index].process, departure: Departure())
        all[index].batchJob = batchJob
        connections += 1
    }

    /// Parks the slots given up, their failures forgotten (their last one kept for errors).
    mutating func parkFailed() {
        for index in all.indices where all[index].hasFailed {
            all[index].state = .parked
            all[index].startFailures = 0
        }
    }

    /// Workers launching, or online and not retiring: the ones the pool keeps.
    var staying: Int { all.count { $0.isStarting || $0.acceptsWork } }

    /// The connection of `index` is gone; its process, if any, is still to be reaped.
    /// Returns the connection it had.
    @discardableResult
    mutating func disconnect(_ index: Int) -> (any DaemonLink)? {
        guard case .online(let link, let process, let departure) = all[index].state else { return nil }
        connections -= 1
        all[index].state = .closing(process: process, departure: departure)
        return link
    }

    /// The launch of `index` reports its process.
    mutating func launched(_ index: Int, _ process: LaunchedProcess) {
        switch all[index].state {
        case .starting(_, let timedOut): all[index].state = .starting(process, timedOut: timedOut)
        case .online(let link, _, let departure): all[index].state = .online(link: link, process: process, departure: departure)
        case .closing(_, let departure): all[index].state = .closing(process: process, departure: departure)
        case .parked, .failed, .stopped: break
        }
    }

    /// The slot a new job goes to: the next one in turn that has not failed (any live
    /// one does in dispatcher mode); nil when every slot has failed.
    mutating func nextTarget() -> Int? {
        for _ in all.indices {
            let index = roundRobinNext % all.count
            roundRobinNext += 1
            if !all[index].hasFailed { return index }
        }
        return nil
    }

    /// The slots waiting for a daemon to join, with the token it must present.
    var waitingTokens: [(slot: Int, token: String)] {
        all.filter { $0.isStarting }.map { ($0.index, $0.token) }
    }
}
