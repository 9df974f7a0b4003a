import KapselWire
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Reads a local connection on a thread of its own, waiting in `poll(2)` until bytes come: the way in of
/// every connection over a Unix socket once it is established (a daemon's from the start,
/// the host's once the daemon is admitted).
///
/// A message arrives with one wake-up of one thread and one system call — no event loop
/// between the socket and the code that handles it. Each read is parsed into whole frames
/// (`FrameDecoder`, with its limits), handed over as one burst, in order; a partial frame
/// waits for the next read. The reader owns its descriptor and closes it when it ends:
/// when the peer closes, a read fails, a frame is malformed, or `shutDown` is called from
/// any thread.
final class SocketReader: Sendable {
    /// How the connection ended: closed by either side (nil), or the error that ended it.
    typealias Ending = (any Error)?

    private let descriptor: Int32
    private let limits: WireLimits
    private let handshakeFrames: Int
    private let busyPoll: Duration

    /// A reader of `descriptor` (it owns it from now on), parsing frames under
    /// `limits`, the first `handshakeFrames` of them under the handshake's; between
    /// messages it stays awake up to `busyPoll` while its peer answers quickly (`ReadinessWait`).
    init(descriptor: Int32, limits: WireLimits, handshakeFrames: Int, busyPoll: Duration) {
        self.descriptor = descriptor
        self.limits = limits
        self.handshakeFrames = handshakeFrames
        self.busyPoll = busyPoll
    }

    /// Starts reading on a new thread: `received` gets each burst of messages in order;
    /// `ended` is called once, last, and then the descriptor is closed.
    func start(received: @escaping @Sendable ([WireMessage]) -> Void, ended: @escaping @Sendable (Ending) -> Void) {
        startDetachedThread { [self] in
            let ending = readUntilEnd(received)
            ended(ending)
            close(descriptor)
        }
    }

    /// Ends the connection from either side's point of view: the peer sees it close, the
    /// reader's blocked read returns and it ends.
    func shutDown() {
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    private func readUntilEnd(_ received: @Sendable ([WireMessage]) -> Void) -> Ending {
        var decoder = FrameDecoder(limits: limits, handshakeFrames: handshakeFrames)
        var waiting = ReadinessWait(busyPoll: busyPoll)
        let allocator = ByteBufferAllocator()
        var capacity = Self.initialCapacity
        var leftover: ByteBuffer?
        while true {
            // A fresh buffer per read: the messages of the last one may still hold slices of it.
            var buffer = allocator.buffer(capacity: max(capacity, Self.needed(for: leftover)))
            if var rest = leftover { buffer.writeBuffer(&rest) }
            let room = buffer.writableBytes
            var count = 0
            while true {
                count = buffer.withUnsafeMutableWritableBytes { space in
                    recv(descriptor, space.baseAddress, space.count, Int32(MSG_DONTWAIT))
                }
                guard count < 0 else { break }
                let code = errno
                if code == EINTR { continue }
                guard code == EAGAIN || code == EWOULDBLOCK else { return SocketReadError(errno: code) }
                if let failure = waiting.wait(on: descriptor) { return SocketReadError(errno: failure) }
            }
            if count == 0 { return nil }
            buffer.moveWriterIndex(forwardBy: count)
            capacity = Self.nextCapacity(capacity, filled: count == room)
            var messages: [WireMessage] = []
            do {
                while let message = try decoder.nextMessage(from: &buffer) { messages.append(message) }
            } catch {
                if !messages.isEmpty { received(messages) }
                return error
            }
            leftover = buffer.readableBytes > 0 ? buffer : nil
            if !messages.isEmpty { received(messages) }
        }
    }

    private static let initialCapacity = 4096
    private static let maximumCapacity = 1 << 20

    /// The buffer a partial frame needs to complete: its whole length once the length is known.
    private static func needed(for leftover: ByteBuffer?) -> Int {
        guard let leftover else { return 0 }
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
