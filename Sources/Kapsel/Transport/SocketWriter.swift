import Dispatch
import DequeModule
import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes a local connection's frames on its socket from whichever thread sends them:
/// the way out of every connection over a Unix socket, on the host and in the daemon.
///
/// The sending thread encodes its frames into the writer's buffer and writes them itself,
/// with one `sendmsg(2)` that never blocks (`MSG_DONTWAIT`) — no hop onto another thread,
/// no event loop woken. Frames handed over with `hold` (while the connection's reader works
/// through a burst of messages) wait and go out together, in the same one call, at
/// `releaseHeld`: the next jobs for all the results that came in at once. What the socket
/// cannot take at once waits in order, and a dispatch source writes it when the socket
/// drains, so a reader that answers on its own connection never waits for the peer to
/// read. Frames go out in the order they are handed over (`ConnectionWriter` hands them
/// over one thread at a time).
///
/// The writer owns its descriptor, a duplicate of the connection's. A close frame shuts
/// the socket down once everything before it is written: whoever reads the connection
/// (NIO during a host's handshake, a `SocketReader` after it) then sees it end.
final class SocketWriter: Sendable {
    /// Encoded bytes on their way: gathered frames, or a large payload sent as it is.
    private struct Outgoing {
        var bytes: ByteBuffer
        /// Whether more frames may be appended (a buffer of the writer's own).
        let gathers: Bool
    }

    private struct State: ~Copyable {
        /// The descriptor, until closed.
        var descriptor: Int32?
        /// Frames handed over and not yet encoded: held, or behind bytes that wait for room.
        var frames: Deque<ConnectionWriter.Frame> = []
        /// Encoded bytes in order.
        var outgoing: Deque<Outgoing> = []
        /// Watches for room while bytes wait.
        var source: (any DispatchSourceWrite)?
        /// A gathering buffer emptied by the last write, for the next frames.
        var spare: ByteBuffer?
    }

    /// Frames are encoded ahead of the socket up to this many bytes.
    private static let gatherLimit = 256 << 10
    /// A buffer larger than this is not kept for reuse.
    private static let spareLimit = 1 << 20

    private let state: Mutex<State>
    private let encoder = FrameEncoder()
    private let allocator = ByteBufferAllocator()
    private static let queue = DispatchQueue(label: "kapsel.socket-drain")

    /// A writer on `descriptor`, which it owns from now on.
    init(descriptor: Int32) {
        self.state = Mutex(State(descriptor: descriptor))
    }

    /// A writer on a duplicate of `descriptor` (close-on-exec); nil if it cannot be made.
    convenience init?(duplicating descriptor: Int32) {
        let duplicate = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard duplicate >= 0 else { return nil }
        self.init(descriptor: duplicate)
    }

    /// Writes `ahead`, then `last`, in order after what waits; with `hold`, they wait for
    /// `releaseHeld`.
    func write(_ ahead: [ConnectionWriter.Frame], then last: ConnectionWriter.Frame, hold: Bool) {
        state.withLock { state in
            guard state.descriptor != nil else { return }
            if !ahead.isEmpty { state.frames.append(contentsOf: ahead) }
            state.frames.append(last)
            if !hold { drain(&state) }
        }
    }

    /// Writes what was held back.
    func releaseHeld() {
        state.withLock { drain(&$0) }
    }

    /// The connection ended: the descriptor goes, and with it what waits.
    func connectionClosed() {
        state.withLock { closeDescriptor(&$0) }
    }

    /// Encodes and writes while the socket takes it.
    private func drain(_ state: inout State) {
        guard let descriptor = state.descriptor else { return }
        while true {
            if gather(&state) {
                // Everything before the close frame is written.
                shutdown(descriptor, Int32(SHUT_RDWR))
                closeDescriptor(&state)
                return
            }
            guard !state.outgoing.isEmpty else { break }
            let written = send(state.outgoing, on: descriptor)
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    watchForRoom(&state, descriptor: descriptor)
                    return
                }
                // The peer is gone; the connection's reader sees it end.
                closeDescriptor(&state)
                return
            }
            consume(written, from: &state)
        }
        if let source = state.source {
            state.source = nil
            source.cancel()
        }
    }

    /// Encodes waiting frames into `outgoing`, up to `gatherLimit` bytes ahead of the
    /// socket; returns true when a close frame is next and nothing is left before it.
    private func gather(_ state: inout State) -> Bool {
        var pending = state.outgoing.reduce(0) { $0 + $1.bytes.readableBytes }
        while pending < Self.gatherLimit, let frame = state.frames.first {
            let message: WireMessage
            switch frame {
            case .message(let next):
                state.frames.removeFirst()
                message = next
            case .chunks(let tag, let index, let storage, let offset):
                // One chunk at a time, the rest first in line.
                let total = storage.segment.byteCount
                let next = offset + min(StreamedAttachments.chunkLength, total - offset)
                if next == total {
                    state.frames.removeFirst()
                } else {
                    state.frames[0] = .chunks(tag: tag, index: index, storage: storage, offset: next)
                }
                message = ConnectionWriter.chunk(tag: tag, index: index, storage: storage, offset: offset, allocator: allocator)
            case .close:
                return state.outgoing.isEmpty
            }
            pending += append(message, to: &state)
        }
        return false
    }

    /// Encodes `message` behind the bytes waiting; returns how many bytes it added.
    private func append(_ message: WireMessage, to state: inout State) -> Int {
        if state.outgoing.last?.gathers != true {
            state.outgoing.append(Outgoing(bytes: state.spare.take() ?? allocator.buffer(capacity: 4096), gathers: true))
        }
        let last = state.outgoing.count - 1
        let before = state.outgoing[last].bytes.readableBytes
        let payload = encoder.append(message, to: &state.outgoing[last].bytes)
        var added = state.outgoing[last].bytes.readableBytes - before
        if let payload {
            state.outgoing.append(Outgoing(bytes: payload, gathers: false))
            added += payload.readableBytes
        }
        return added
    }

    /// Sends the first one or two buffers of `outgoing` in one call; returns the bytes
    /// written, or -1 with `errno`.
    private func send(_ outgoing: Deque<Outgoing>, on descriptor: Int32) -> Int {
        let flags = Int32(MSG_DONTWAIT | MSG_NOSIGNAL)
        let first = outgoing[0].bytes
        guard outgoing.count > 1 else {
            return first.withUnsafeReadableBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, flags) }
        }
        let second = outgoing[1].bytes
        return first.withUnsafeReadableBytes { head in
            second.withUnsafeReadableBytes { tail in
                var vectors = [
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count),
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: tail.baseAddress), iov_len: tail.count),
                ]
                return vectors.withUnsafeMutableBufferPointer { vectors in
                    var message = msghdr()
                    message.msg_iov = vectors.baseAddress
                    message.msg_iovlen = vectors.count
                    return sendmsg(descriptor, &message, flags)
                }
            }
        }
    }

    /// Drops `count` written bytes from the front of `outgoing`, keeping an emptied
    /// gathering buffer for the next frames.
    private func consume(_ count: Int, from state: inout State) {
        var left = count
        while left > 0 || state.outgoing.first?.bytes.readableBytes == 0, var first = state.outgoing.first {
            let taken = min(left, first.bytes.readableBytes)
            first.bytes.moveReaderIndex(forwardBy: taken)
            left -= taken
            if first.bytes.readableBytes > 0 {
                state.outgoing[0] = first
                return
            }
            state.outgoing.removeFirst()
            if first.gathers, first.bytes.capacity <= Self.spareLimit {
                first.bytes.clear()
                state.spare = first.bytes
            }
        }
    }

    /// Arms the source that drains what waits when the socket has room again.
    private func watchForRoom(_ state: inout State, descriptor: Int32) {
        guard state.source == nil else { return }
        let source = DispatchSource.makeWriteSource(fileDescriptor: descriptor, queue: Self.queue)
        source.setEventHandler { [self] in
            self.state.withLock { drain(&$0) }
        }
        state.source = source
        source.resume()
    }

    private func closeDescriptor(_ state: inout State) {
        state.frames.removeAll()
        state.outgoing.removeAll()
        state.spare = nil
        guard let descriptor = state.descriptor else { return }
        state.descriptor = nil
        if let source = state.source {
            // Closed once the source lets go of it.
            state.source = nil
            source.setCancelHandler { close(descriptor) }
            source.cancel()
        } else {
            close(descriptor)
        }
    }
}
