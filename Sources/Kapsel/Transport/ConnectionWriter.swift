import DequeModule
import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization

/// The one way out of a connection: every frame either side sends — handshake,
/// heartbeats, requests, results, release tokens, streamed chunks — goes through it, in
/// the order it was queued, whichever threads queue it.
///
/// Sending has two steps. `enqueue` queues a message (the host's dispatcher does so
/// while it holds its lock, so a daemon gets its messages in the order they were
/// decided). `flush` takes what is queued, one thread at a time (`OrderedOutbox`): each
/// message's shared memory is carried first by the connection's `AttachmentCarrier`
/// (descriptors sent, or chunks lined up), then the frames are handed to the
/// connection's event loop, which writes them in order while the connection is writable,
/// each encoded by the one `FrameEncoder`. A flush on the loop with nothing handed over
/// before it writes at once, with no thread hop. While the host's handler works through a
/// read burst (`holdFlushes` … `releaseFlushes`) the messages the loop writes go out
/// together in one write at its end: the next jobs for each of the results that came in
/// together. A daemon never holds its results: one held while the next job runs would be
/// lost if that job crashed the daemon, and the host would blame the wrong job.
///
/// On a local connection (a Unix socket) the frames are not handed to a loop at all: the
/// sending thread writes them on the socket (`SocketWriter`), and what the read burst
/// holds back goes out in one call at its end.
///
/// As the host's end of a daemon connection it is the dispatcher's `DaemonLink`.
final class ConnectionWriter: DaemonLink {
    /// What the event loop writes.
    enum Frame: Sendable {
        /// A message.
        case message(WireMessage)
        /// The chunks of a streamed attachment still to go, from `offset`.
        case chunks(tag: UInt64, index: UInt32, storage: SharedStorage, offset: Int)
        /// The end of the connection, after everything before it.
        case close
    }

    private enum Item: Sendable {
        case message(OutgoingMessage)
        case close
    }

    private struct Ready: ~Copyable {
        var frames: Deque<Frame> = []
        /// A write is scheduled on the loop and has not begun.
        var scheduled = false
        /// The loop handles a read burst: its writes wait for one flush at the end.
        var holding = false
        /// Something was written while holding.
        var flushWanted = false
    }

    /// The NIO channel whose loop writes the frames, or (with `direct`) whose socket the
    /// sending threads write; nil for a connection NIO never had.
    private let channel: (any Channel)?
    private let encoder = FrameEncoder()
    private let outbox = OrderedOutbox<Item>()
    private let ready = Mutex(Ready())
    /// How the connection carries shared memory, once the handshake has chosen it; until
    /// then messages carry none.
    private let carrier = Mutex<(any AttachmentCarrier)?>(nil)

    /// Writes the socket from the sending thread, when the connection is local.
    private let direct: SocketWriter?
    /// What a local connection does when a request's shared memory cannot be carried:
    /// the connection is broken (NIO's connections fire the error down their pipeline).
    private let failureHandler = Mutex<(@Sendable (any Error) -> Void)?>(nil)

    /// The loop for the connection's timers and for what is sent from it later
    /// (`sendSoon`): the channel's, or one given for a connection NIO does not run.
    let eventLoop: any EventLoop

    /// A writer for `channel`; with `direct` (a local connection, created on its loop),
    /// frames are written on the socket by the thread that sends them (`SocketWriter`, on a
    /// duplicate of the channel's descriptor).
    init(channel: any Channel, direct: Bool = false) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.direct = direct ? Self.duplicateSocket(of: channel).flatMap { SocketWriter(duplicating: $0) } : nil
    }

    /// A writer for a local connection with no NIO channel: `socket` writes it, and
    /// `eventLoop` runs its timers.
    init(socket: SocketWriter, eventLoop: any EventLoop) {
        self.channel = nil
        self.eventLoop = eventLoop
        self.direct = socket
    }

    /// The descriptor of `channel`'s socket (called on its loop).
    private static func duplicateSocket(of channel: any Channel) -> Int32? {
        try? channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { $0 }
    }

    /// From now on, a request whose shared memory cannot be carried breaks the
    /// connection through `handler` (a local connection, read by a `SocketReader`).
    func onFailure(_ handler: @escaping @Sendable (any Error) -> Void) {
        failureHandler.withLock { $0 = handler }
    }

    /// From now on shared memory goes through `carrier`.
    func install(_ carrier: any AttachmentCarrier) {
        self.carrier.withLock { $0 = carrier }
    }

    /// The carrier, once installed.
    var attachmentCarrier: (any AttachmentCarrier)? {
        carrier.withLock { $0 }
    }

    // MARK: Queueing

    func enqueue(_ message: OutgoingMessage) {
        outbox.enqueue(.message(message))
    }

    func enqueueClose() {
        outbox.enqueue(.close)
    }

    /// Queues `message` and writes what is queued.
    func send(_ message: OutgoingMessage) {
        enqueue(message)
        flush()
    }

    /// Queues `message` and writes it from the connection's event loop: for callers that
    /// may hold locks of their own (a dropped slot's release, a pool that waits).
    func sendSoon(_ message: WireMessage) {
        enqueue(.plain(message))
        eventLoop.execute { self.flush() }
    }

    /// Queues the end of the connection and writes what is queued before it.
    func close() {
        enqueueClose()
        flush()
    }

    /// Carries and hands over what is queued, in order; returns at once when another
    /// thread is at it (that thread takes the newcomers too). A message whose shared
    /// memory cannot be carried becomes a failure saying so when it is an answer; when it
    /// is a request, the connection is broken and fails with that error.
    func flush() {
        outbox.flush { item in
            switch item {
            case .message(let message):
                if let carried = carry(message) { hand(over: carried.ahead, then: .message(carried.message)) }
            case .close:
                hand(over: [], then: .close)
            }
        }
        // A local connection's socket gets what one flush handed over in one write (a
        // flush that found another under way leaves it to that one, which writes last).
        if let direct, !ready.withLock({ $0.holding }) { direct.releaseHeld() }
    }

    private func carry(_ message: OutgoingMessage) -> CarriedMessage? {
        guard let carrier = attachmentCarrier else {
            precondition(message.attachments.isEmpty, "a message carries shared memory before the connection can")
            return CarriedMessage(message: message.message(announcing: []))
        }
        do {
            return try carrier.carry(message)
        } catch {
            if let failed = message.undeliverable(because: error), let carried = try? carrier.carry(failed) { return carried }
            let failure = SharedMemoryError("cannot pass shared memory to the peer: \(error)")
            if let handler = failureHandler.withLock({ $0 }) {
                handler(failure)
            } else {
                channel?.pipeline.fireErrorCaught(failure)
            }
            return nil
        }
    }

    // MARK: Writing, on the loop

    /// Hands `ahead`, then `last`, to the loop. Only `flush` hands frames over, one thread
    /// at a time, and only the loop takes them: on the loop, with nothing waiting before
    /// it and room on the connection, a lone message is written at once.
    private func hand(over ahead: [Frame], then last: Frame) {
        if let direct {
            direct.write(ahead, then: last, hold: true)
            return
        }
        guard let channel else { return }
        if channel.eventLoop.inEventLoop {
            if ahead.isEmpty, case .message(let message) = last, channel.isWritable, ready.withLock({ $0.frames.isEmpty }) {
                write(message, on: channel)
                flushUnlessHeld(on: channel)
                return
            }
            let waiting = ready.withLock { ready in
                if !ahead.isEmpty { ready.frames.append(contentsOf: ahead) }
                ready.frames.append(last)
                return ready.scheduled
            }
            // Frames handed over from other threads go first, with the rest.
            if !waiting { write(on: channel) }
        } else {
            let schedule = ready.withLock { ready in
                if !ahead.isEmpty { ready.frames.append(contentsOf: ahead) }
                ready.frames.append(last)
                defer { ready.scheduled = true }
                return !ready.scheduled
            }
            if schedule { channel.eventLoop.execute { self.writeScheduled() } }
        }
    }

    private func writeScheduled() {
        ready.withLock { $0.scheduled = false }
        if let channel { write(on: channel) }
    }

    /// The connection can take more again (from the handler's `channelWritabilityChanged`).
    func writabilityChanged() {
        if let channel, direct == nil, channel.isWritable { write(on: channel) }
    }

    /// Writes ready frames while the connection takes them, then flushes (on the loop).
    private func write(on channel: any Channel) {
        var wrote = false
        while channel.isWritable, let frame = nextFrame() {
            switch frame {
            case .message(let message):
                write(message, on: channel)
                wrote = true
            case .chunks(let tag, let index, let storage, let offset):
                // A big frame goes out at once rather than piling up behind others.
                write(Self.chunk(tag: tag, index: index, storage: storage, offset: offset, allocator: channel.allocator), on: channel)
                channel.flush()
            case .close:
                channel.flush()
                channel.close(promise: nil)
                return
            }
        }
        if wrote { flushUnlessHeld(on: channel) }
    }

    // MARK: Read bursts, on the loop

    /// The handler begins a read burst: what the loop writes until `releaseFlushes` is
    /// flushed once, then.
    func holdFlushes() {
        ready.withLock { $0.holding = true }
    }

    /// The read burst ended: what was written during it goes out, in one write.
    func releaseFlushes() {
        let wanted = ready.withLock { ready in
            defer { ready.holding = false; ready.flushWanted = false }
            return ready.flushWanted
        }
        if let direct {
            direct.releaseHeld()
        } else if wanted {
            channel?.flush()
        }
    }

    /// Flushes what was written, or leaves it for the end of the read burst.
    private func flushUnlessHeld(on channel: any Channel) {
        let now = ready.withLock { ready in
            if ready.holding { ready.flushWanted = true }
            return !ready.holding
        }
        if now { channel.flush() }
    }

    /// Writes `message`'s frame, unflushed (on the loop).
    private func write(_ message: WireMessage, on channel: any Channel) {
        let (head, payload) = encoder.encode(message, allocator: channel.allocator)
        channel.write(head, promise: nil)
        if let payload { channel.write(payload, promise: nil) }
    }

    /// The next frame to write: a message, or one chunk of an attachment being streamed
    /// (the rest stays first in line). Only the loop takes frames, so the chunk's bytes
    /// are copied after the lock is released.
    private func nextFrame() -> Frame? {
        ready.withLock { ready -> Frame? in
            guard let head = ready.frames.first else { return nil }
            guard case .chunks(let tag, let index, let storage, let offset) = head else {
                return ready.frames.removeFirst()
            }
            let next = offset + min(StreamedAttachments.chunkLength, storage.segment.byteCount - offset)
            if next == storage.segment.byteCount {
                ready.frames.removeFirst()
            } else {
                ready.frames[0] = .chunks(tag: tag, index: index, storage: storage, offset: next)
            }
            return head
        }
    }

    /// The chunk of `storage` at `offset`, its bytes copied once from the shared memory.
    static func chunk(tag: UInt64, index: UInt32, storage: SharedStorage, offset: Int, allocator: ByteBufferAllocator) -> WireMessage {
        let total = storage.segment.byteCount
        let length = min(StreamedAttachments.chunkLength, total - offset)
        var bytes = allocator.buffer(capacity: length)
        bytes.writeBytes(UnsafeRawBufferPointer(start: storage.segment.payload + offset, count: length))
        return .attachmentChunk(AttachmentChunk(tag: tag, index: index, byteCount: UInt64(total), offset: UInt64(offset), bytes: bytes))
    }

    /// The connection closed: what was not written is dropped.
    func connectionClosed() {
        ready.withLock { $0.frames.removeAll() }
        failureHandler.withLock { $0 = nil }
        direct?.connectionClosed()
        attachmentCarrier?.connectionClosed()
    }

    var lentSharedMemoryBytes: Int {
        attachmentCarrier?.lentByteCount ?? 0
    }

    var peerAddress: String? {
        guard let address = channel?.remoteAddress, let ip = address.ipAddress, let port = address.port else { return nil }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
