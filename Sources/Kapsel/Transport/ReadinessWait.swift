#if canImport(Glibc)
import Glibc
#endif

/// How a `SocketReader` waits for its peer's next bytes: asleep in `poll(2)`, or awake
/// for a while first while the peer has been answering quickly (`BusyWait`).
struct ReadinessWait {
    private var waiting: BusyWait

    init(busyPoll: Duration) {
        waiting = BusyWait(busyPoll: busyPoll)
    }

    /// Waits until `descriptor` has bytes to read or has ended; returns an `errno` if
    /// waiting failed.
    mutating func wait(on descriptor: Int32) -> Int32? {
        do {
            try waiting.wait(until: { Self.isReadable(descriptor, timeout: 0) }, sleep: { () throws(SleepFailure) in
                guard Self.isReadable(descriptor, timeout: -1) || errno == EINTR else { throw SleepFailure(errno: errno) }
            })
            return nil
        } catch {
            return error.errno
        }
    }

    /// Whether `descriptor` is readable (or ended) within `timeout` milliseconds (-1: no
    /// limit); false with `errno` set when `poll` fails.
    private static func isReadable(_ descriptor: Int32, timeout: Int32) -> Bool {
        var watched = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&watched, 1, timeout) > 0
    }

    private struct SleepFailure: Error {
        let errno: Int32
    }
}
