#if canImport(Glibc)
import Glibc
#endif

/// How a `SocketReader` waits for its peer's next bytes: asleep in `poll(2)`, or — while
/// the peer has been answering within `busyPoll` — awake for up to that long first,
/// checking the socket and yielding the processor to any other thread that wants it.
///
/// Waking a sleeping thread costs far more than the few system calls of a round trip on
/// these machines (an idle processor is woken by an interrupt from another; on a virtual
/// machine each is an exit to the hypervisor): a request/answer exchange that sleeps on
/// both sides pays it twice. A reader whose peer answered quickly the last time stays
/// awake through the next short gap instead, as network stacks' busy polling does; one
/// whose peer was slow (or an idle connection) sleeps at once, so a quiet pool costs no
/// processor time. `sched_yield(2)` in the loop keeps a polling reader from holding a
/// processor another thread is waiting for.
struct ReadinessWait {
    /// The longest a reader stays awake waiting; zero turns polling off.
    let busyPoll: Duration
    /// Whether the last gap between bursts was short enough to poll through the next.
    private var peerIsQuick = false
    /// When the reader last started waiting.
    private var waitingSince = ContinuousClock.now

    init(busyPoll: Duration) {
        self.busyPoll = busyPoll
    }

    /// Waits until `descriptor` has bytes to read or has ended; returns an `errno` if
    /// waiting failed.
    mutating func wait(on descriptor: Int32) -> Int32? {
        waitingSince = .now
        if peerIsQuick, busyPoll > .zero, pollAwake(descriptor) {
            return nil
        }
        var watched = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while poll(&watched, 1, -1) < 0 {
            guard errno == EINTR else { return errno }
        }
        peerIsQuick = ContinuousClock.now - waitingSince < busyPoll
        return nil
    }

    /// Checks the socket, yielding between checks, until it is readable (true) or
    /// `busyPoll` has passed (false).
    private mutating func pollAwake(_ descriptor: Int32) -> Bool {
        let deadline = waitingSince + busyPoll
        var watched = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        repeat {
            if poll(&watched, 1, 0) > 0 { return true }
            sched_yield()
        } while ContinuousClock.now < deadline
        peerIsQuick = false
        return false
    }
}
