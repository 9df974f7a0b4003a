#if canImport(Glibc)
import Glibc
#endif

/// How a thread that serves a peer waits for the peer's next request: asleep — or, while
/// the peer has been coming back within `busyPoll`, awake for up to that long first,
/// checking for work and yielding the processor to any other thread that wants it.
///
/// Waking a sleeping thread costs far more than the few system calls of a round trip on
/// these machines (an idle processor is woken by an interrupt from another; on a virtual
/// machine each is an exit to the hypervisor): a request/answer exchange that sleeps on
/// both sides pays it twice. A thread whose peer came back quickly the last time stays
/// awake through the next short gap instead, as network stacks' busy polling does; one
/// whose peer was slow (an idle connection, a quiet pool) sleeps at once and costs no
/// processor time. `sched_yield(2)` in the loop keeps a polling thread from holding a
/// processor that another thread is waiting for.
package struct BusyWait {
    /// The polling time a daemon and its host use unless `DaemonOptions.busyPoll` says
    /// otherwise: a few round trips on these machines.
    package static let defaultBusyPoll: Duration = .microseconds(100)

    /// The longest a thread stays awake waiting; zero turns polling off.
    package let busyPoll: Duration
    /// Whether the last gap was short enough to poll through the next.
    private var peerIsQuick = false

    package init(busyPoll: Duration) {
        self.busyPoll = busyPoll
    }

    /// Returns once `isReady` holds: polls it while the peer has been quick, then sleeps
    /// with `sleep`, which returns when work may have come (and may return early).
    /// Rethrows what `sleep` throws.
    package mutating func wait<E: Error>(until isReady: () -> Bool, sleep: () throws(E) -> Void) throws(E) {
        let clock = ContinuousClock()
        let start = clock.now
        if peerIsQuick, busyPoll > .zero {
            let deadline = start + busyPoll
            repeat {
                if isReady() { return }
                sched_yield()
            } while clock.now < deadline
            peerIsQuick = false
        }
        while !isReady() { try sleep() }
        // A gap measured across a sleep includes the wake-up itself (tens of microseconds
        // on these machines): the peer counts as quick up to twice the polling time.
        peerIsQuick = clock.now - start < busyPoll * 2
    }
}
