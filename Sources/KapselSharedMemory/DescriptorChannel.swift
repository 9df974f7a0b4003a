import CKapselShim
import KapselWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A local socket (`SOCK_SEQPACKET`) that carries shared memory descriptors between two
/// processes, tagged with the id of the message they belong to. SwiftNIO cannot pass
/// descriptors, so they go here, sent before the message that refers to them.
///
/// Receiving looks for the tag asked for and keeps others aside, so messages sent from
/// different threads may interleave. It never waits: a message's descriptors are sent
/// before the message, so by the time it is read they are here, and a peer that
/// announces descriptors it did not send is caught at once. Sending times out
/// (`timeoutSeconds`), so a peer that stops reading cannot block this process.
package final class DescriptorChannel: Sendable {
    private let socket: Int32
    private let sendLock = Mutex<Void>(())
    private let pending = Mutex<[UInt64: [Int32]]>([:])
    private static let headerSize = 12

    /// Wraps `socket`, taking ownership.
    package init(socket: Int32, timeoutSeconds: Int = 10) {
        self.socket = socket
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(socket)
        for descriptors in pending.withLock({ $0.values }) { descriptors.forEach { close($0) } }
    }

    /// A connected pair: this end, and the other end's raw descriptor (close-on-exec;
    /// give it to a child process and close it here).
    package static func pair() throws(SharedMemoryError) -> (DescriptorChannel, Int32) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SharedMemoryError("cannot create a descriptor channel", errno: errno)
        }
        return (DescriptorChannel(socket: fds[0]), fds[1])
    }

    /// Sends the descriptors of `segments`, tagged `tag`.
    package func send(tag: UInt64, segments: [SharedSegment]) throws(SharedMemoryError) {
        guard !segments.isEmpty else { return }
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        header.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: tag, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: UInt32(segments.count), toByteOffset: 8, as: UInt32.self)
        }
        let descriptors = segments.map(\.descriptor)
        let sent = sendLock.withLock { _ in
            withExtendedLifetime(segments) {
                kapsel_send_with_fds(socket, header, UInt(header.count), descriptors, Int32(descriptors.count))
            }
        }
        guard sent == Self.headerSize else { throw SharedMemoryError("cannot send shared memory descriptors", errno: errno) }
    }

    /// Receives the `count` descriptors tagged `tag`, which were sent before the message
    /// that announces them; the caller owns them. Throws at once if they are not here.
    package func receive(tag: UInt64, count: Int) throws(SharedMemoryError) -> [Int32] {
        guard count > 0 else { return [] }
        return try pending.withLock { (pending) throws(SharedMemoryError) -> [Int32] in
            if let ready = pending.removeValue(forKey: tag) { return try Self.checked(ready, count: count, tag: tag) }
            var header = [UInt8](repeating: 0, count: Self.headerSize)
            var descriptors = [Int32](repeating: -1, count: WireLimits.maxAttachments)
            while true {
                var received: Int32 = 0
                let length = kapsel_receive_with_fds(socket, &header, UInt(header.count), &descriptors, Int32(descriptors.count), &received, 1)
                guard length > 0 else {
                    let code = errno
                    if length == 0 { throw SharedMemoryError("the descriptor channel closed") }
                    if code == EAGAIN || code == EWOULDBLOCK {
                        throw SharedMemoryError("message \(tag) announced \(count) shared memory attachments whose descriptors were not sent before it")
                    }
                    throw SharedMemoryError("cannot receive shared memory descriptors", errno: code)
                }
                let got = Array(descriptors[0..<Int(received)])
                let messageTag = header.withUnsafeBytes { $0.load(fromByteOffset: 0, as: UInt64.self) }
                guard length == Self.headerSize else {
                    got.forEach { close($0) }
                    throw SharedMemoryError("a malformed message on the descriptor channel")
                }
                if messageTag == tag { return try Self.checked(got, count: count, tag: tag) }
                guard pending.count < 1024 else {
                    got.forEach { close($0) }
                    throw SharedMemoryError("too many unclaimed descriptor messages")
                }
                pending[messageTag] = got
            }
        }
    }

    private static func checked(_ descriptors: [Int32], count: Int, tag: UInt64) throws(SharedMemoryError) -> [Int32] {
        guard descriptors.count == count else {
            descriptors.forEach { close($0) }
            throw SharedMemoryError("message \(tag) announced \(count) attachments but \(descriptors.count) descriptors arrived")
        }
        return descriptors
    }
}
