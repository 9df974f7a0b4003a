import KapselWire
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What a reader of a local connection keeps between reads: the frame decoder (with its
/// limits), the bytes of a frame not complete yet, the size of the next read's buffer, and
/// how it waits for bytes (`ReadinessWait`).
struct FrameReading {
    /// How a connection's reading ended.
    enum End {
        /// The peer closed it, or this side shut it down.
        case closed
        /// A read failed, or a frame was malformed.
        case failed(any Error)

        /// The end as `SocketReader` reports it: nil when closed.
        var error: (any Error)? {
            if case .failed(let error) = self { error } else { nil }
        }
    }

    private var decoder: FrameDecoder
    private var waiting: ReadinessWait
    private var capacity = Self.initialCapacity
    private var leftover: ByteBuffer?
    /// Whether messages hold slices of the leftover's buffer (writing into it would copy it).
    private var leftoverIsShared = false
    private let allocator = ByteBufferAllocator()

    /// A reader's state for frames under `limits`, the first `handshakeFrames` of them under
    /// the handshake's, waiting for bytes with `busyPoll`.
    init(limits: WireLimits, handshakeFrames: Int, busyPoll: Duration) {
        decoder = FrameDecoder(limits: limits, handshakeFrames: handshakeFrames)
        waiting = ReadinessWait(busyPoll: busyPoll)
    }

    /// Waits for bytes on `descriptor` and reads what is there: the whole messages it
    /// completes, in order, and how the connection ended if it did (after those messages).
    mutating func read(from descriptor: Int32) -> (messages: [WireMessage], end: End?) {
        var buffer: ByteBuffer
        if let partial = leftover, !leftoverIsShared, partial.writableBytes >= Self.needed(for: partial) - partial.readableBytes {
            // The frame not complete yet is read on in place: its buffer has room for all
            // of it and no message holds a slice of it.
            buffer = partial
            leftover = nil
        } else {
            // A fresh buffer when the last read's messages still hold slices of its buffer, or
            // a frame needs more room; it has room for the whole frame, so a frame's bytes are
            // copied at most once, not again with every read.
            buffer = allocator.buffer(capacity: max(capacity, leftover.map(Self.needed(for:)) ?? 0))
            if var rest = leftover.take() { buffer.writeBuffer(&rest) }
        }
        let room = buffer.writableBytes
        var count = 0
        while true {
            count = buffer.withUnsafeMutableWritableBytes { space in
                recv(descriptor, space.baseAddress, space.count, Int32(MSG_DONTWAIT))
            }
            guard count < 0 else { break }
            let code = errno
            if code == EINTR { continue }
            guard code == EAGAIN || code == EWOULDBLOCK else { return ([], .failed(SocketReadError(errno: code))) }
            if let failure = waiting.wait(on: descriptor) { return ([], .failed(SocketReadError(errno: failure))) }
        }
        if count == 0 { return ([], .closed) }
        buffer.moveWriterIndex(forwardBy: count)
        capacity = Self.nextCapacity(capacity, filled: count == room)
        var messages: [WireMessage] = []
        do {
            while let message = try decoder.nextMessage(from: &buffer) { messages.append(message) }
        } catch {
            return (messages, .failed(error))
        }
        leftover = buffer.readableBytes > 0 ? buffer : nil
        leftoverIsShared = !messages.isEmpty
        return (messages, nil)
    }

    private static let initialCapacity = 4096
    private static let maximumCapacity = 1 << 20

    /// The bytes a partial frame needs to complete: its whole length once the length is known.
    private static func needed(for leftover: ByteBuffer) -> Int {
        guard let length = leftover.getInteger(at: leftover.readerIndex, as: UInt32.self) else { return leftover.readableBytes + initialCapacity }
        return 4 + Int(length)
    }

    /// Reads that fill the buffer double it; reads that do not let it shrink back.
    private static func nextCapacity(_ capacity: Int, filled: Bool) -> Int {
        filled ? min(capacity * 2, maximumCapacity) : max(capacity / 2, initialCapacity)
    }
}

/// A read of a local connection failed.
struct SocketReadError: Error, CustomStringConvertible {
    let errno: Int32

    var description: String {
        "reading the connection failed: \(String(cString: strerror(errno)))"
    }
}
