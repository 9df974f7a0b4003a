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
        var reading = FrameReading(limits: limits, handshakeFrames: handshakeFrames, busyPoll: busyPoll)
        while true {
            let (messages, end) = reading.read(from: descriptor)
            if !messages.isEmpty { received(messages) }
            if let end { return end.error }
        }
    }
}
