import CKapselShim
import DequeModule
import KapselWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Reads a daemon's connection to its host on two threads that take turns: one reads and
/// hands the messages over one by one, in order — running inline what a message starts (a
/// job, an actor call, an interpreter call), which is what makes a short request's answer
/// leave on the thread that read it; the other sleeps. When the reading thread has been
/// busy with one message for `relief`, the other takes over the reading, so the host's
/// cancellations (which interrupt an interpreter mid-call) and calls to other actors are
/// read and handled meanwhile; once the busy thread is done, it becomes the one that sleeps.
///
/// The sleeping thread waits on a timer (`timerfd`) that the reading thread arms when it
/// starts handing messages over: no wake-up per message, one per `relief` at most while
/// the connection is busy, none while it is idle. The relay owns its descriptor; `ended`
/// is called once, by the thread that finds the connection over, after every message read
/// before the end was handed over.
final class ReaderRelay: Sendable {
    private struct State: ~Copyable {
        /// The thread (0 or 1) that reads now.
        var leader = 0
        /// Messages read and not handed over yet, in order.
        var queue: Deque<WireMessage> = []
        /// What the reading thread keeps between reads, while no thread is reading.
        var reading: FrameReading?
        /// Since when the leader has been handing one message over.
        var busySince: ContinuousClock.Instant?
        var timerArmed = false
        /// How the connection ended, read and not yet reported (messages before it wait).
        var pendingEnd: FrameReading.End?
        /// Set once the end was reported: both threads stop.
        var ended = false
        /// Threads stopped; the last one closes the descriptors.
        var stopped = 0
    }

    private enum Step {
        case deliver(WireMessage)
        case read(FrameReading)
        case end(FrameReading.End)
        case sleep
        case stop
    }

    /// How long one message may keep the reading thread before the other reads instead.
    static let relief = Duration.milliseconds(10)

    private let descriptor: Int32
    /// The relief timer; -1 where there is none (one thread reads, as `SocketReader` does).
    private let timer: Int32
    private let state: Mutex<State>

    /// A relay of `descriptor` (it owns it from now on), parsing frames under `limits`, the
    /// first `handshakeFrames` of them under the handshake's, waiting for bytes with
    /// `busyPoll` (`ReadinessWait`).
    init(descriptor: Int32, limits: WireLimits, handshakeFrames: Int, busyPoll: Duration) {
        self.descriptor = descriptor
        self.timer = kapsel_timer_create()
        self.state = Mutex(State(reading: FrameReading(limits: limits, handshakeFrames: handshakeFrames, busyPoll: busyPoll)))
    }

    /// Starts the threads: `received` gets each message, in order; `ended` once, last.
    func start(received: @escaping @Sendable (WireMessage) -> Void, ended: @escaping @Sendable (SocketReader.Ending) -> Void) {
        let threads = timer >= 0 ? 2 : 1
        if timer < 0 { state.withLock { $0.stopped = 1 } }
        for thread in 0..<threads {
            startDetachedThread { [self] in run(as: thread, received: received, ended: ended) }
        }
    }

    /// Ends the connection from either side's point of view: the peer sees it close, and
    /// the reading thread finds it ended.
    func shutDown() {
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    private func run(as me: Int, received: @Sendable (WireMessage) -> Void, ended: @Sendable (SocketReader.Ending) -> Void) {
        while true {
            switch nextStep(for: me) {
            case .deliver(let message):
                received(message)
                state.withLock { $0.busySince = nil }
            case .read(var reading):
                let (messages, end) = reading.read(from: descriptor)
                state.withLock { state in
                    state.reading = reading
                    state.queue.append(contentsOf: messages)
                    state.pendingEnd = end
                }
            case .end(let end):
                // The other thread stops when it wakes, or when its message is handed over.
                if timer >= 0 { _ = kapsel_timer_set(timer, 1) }
                ended(end.error)
                stop()
                return
            case .sleep:
                _ = kapsel_timer_wait(timer)
                relieve(as: me)
            case .stop:
                stop()
                return
            }
        }
    }

    /// What thread `me` does next: hand over the next message, read, report the end, or
    /// (when the other thread leads) sleep.
    private func nextStep(for me: Int) -> Step {
        state.withLock { state -> Step in
            if state.ended { return .stop }
            guard state.leader == me else { return .sleep }
            if let message = state.queue.popFirst() {
                state.busySince = .now
                if !state.timerArmed, timer >= 0 {
                    state.timerArmed = true
                    _ = kapsel_timer_set(timer, Self.nanoseconds(Self.relief))
                }
                return .deliver(message)
            }
            if let end = state.pendingEnd {
                state.ended = true
                return .end(end)
            }
            guard let reading = state.reading.take() else { return .stop }
            return .read(reading)
        }
    }

    /// The timer fired for thread `me`, which does not lead: it takes over the reading if
    /// the leader has been busy with one message for `relief`, waits the rest if it has
    /// been busy less, or lets the timer rest while nothing is handed over.
    private func relieve(as me: Int) {
        state.withLock { state in
            guard !state.ended, state.leader != me else { return }
            guard let since = state.busySince else {
                state.timerArmed = false
                return
            }
            let busy = ContinuousClock.now - since
            if busy >= Self.relief {
                state.leader = me
                state.timerArmed = false
            } else {
                _ = kapsel_timer_set(timer, Self.nanoseconds(Self.relief - busy))
            }
        }
    }

    /// Thread bookkeeping: the second thread to stop closes the descriptors.
    private func stop() {
        let last = state.withLock { state in
            state.stopped += 1
            return state.stopped == 2
        }
        guard last else { return }
        close(descriptor)
        if timer >= 0 { close(timer) }
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}
