#if canImport(Glibc)
import Glibc
#endif

/// Connections that never say a word: what a flood of idle peers does to a host. Run in
/// a process of its own (the host's descriptors are the host's), it opens them in waves,
/// each established before the next, and watches the host close them.
public enum IdleFlood {
    /// What the flood saw.
    public struct Outcome: Sendable {
        /// Connections established.
        public var established: Int
        /// Of those, the ones the host had closed by the end.
        public var closed: Int
        /// Seconds from the last wave until the host had closed them all (or the limit).
        public var secondsToClose: Double
    }

    /// Opens `count` connections to `127.0.0.1:port` in waves of `wave` and waits up to
    /// `limit` seconds after the last wave for the host to close them.
    public static func run(port: Int, count: Int, wave: Int = 1_000, limit: Double = 15) -> Outcome {
        var all: [Int32] = []
        defer { all.forEach { close($0) } }
        while all.count < count {
            let next = (0..<min(wave, count - all.count)).compactMap { _ in connecting(port: port) }
            guard !next.isEmpty else { break }
            all += next
            if !waitUntilEstablished(next, seconds: 10) { break }
        }
        let start = now()
        var open = Set(all)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !open.isEmpty && now() - start < limit {
            for descriptor in open {
                let read = recv(descriptor, &chunk, chunk.count, 0)
                if read == 0 || (read < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { open.remove(descriptor) }
            }
            usleep(100_000)
        }
        return Outcome(established: all.count, closed: all.count - open.count, secondsToClose: now() - start)
    }

    /// A non-blocking connection to `127.0.0.1:port` under way, or nil.
    private static func connecting(port: Int) -> Int32? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return descriptor
    }

    /// Whether every connection in `descriptors` is established (writable) within `seconds`.
    private static func waitUntilEstablished(_ descriptors: [Int32], seconds: Double) -> Bool {
        let start = now()
        var pending = descriptors
        while !pending.isEmpty && now() - start < seconds {
            var polls = pending.map { pollfd(fd: $0, events: Int16(POLLOUT), revents: 0) }
            _ = poll(&polls, nfds_t(polls.count), 20)
            pending = polls.filter { $0.revents & Int16(POLLOUT) == 0 }.map(\.fd)
        }
        return pending.isEmpty
    }

    /// Seconds on the monotonic clock.
    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
