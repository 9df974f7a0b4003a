import Dispatch
import DequeModule
import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes a local daemon's connection from whichever thread sends, straight to its socket:
/// the host's way out on a Unix socket, in place of the event loop.
///
/// A submitting thread handing a request to the connection's event loop had to wake the
/// loop first — the largest share of a job's round trip beyond the socket's own (the W1
/// stage breakdown) — so here the sender writes the frame itself, with `writev(2)` on a
/// duplicate of the socket's descriptor, while the event loop goes on reading. Frames go in
/// the order they are handed over (`ConnectionWriter` hands them over one thread at a
/// time); what the socket cannot take at once waits, in order, and a dispatch source writes
/// it when the socket drains. Once this writer exists, nothing else writes the socket.
final class DirectSocketWriter: Sendable {
    /// A frame to write, or bytes already encoded (held messages).
    private enum Pending {
        case frame(ConnectionWriter.Frame)
        case bytes(ByteBuffer)
    }

    private struct State: ~Copyable {
        /// The duplicate descriptor, until closed.
        var descriptor: Int32?
        /// Frames waiting for room on the socket, and the bytes of the first one's rest.
        var waiting: Deque<Pending> = []
        var rest: ByteBuffer?
        /// Watches for room while something waits.
        var source: (any DispatchSourceWrite)?
        /// Written bytes held for the end of a read burst (`ConnectionWriter.holdFlushes`).
        var held: ByteBuffer?
    }

    private let state: Mutex<State>
    private let encoder = FrameEncoder()
    private let allocator = ByteBufferAllocator()
    private let channel: any Channel
    private static let queue = DispatchQueue(label: "kapsel.socket-drain")

    /// A writer for `channel`'s socket, or nil when the channel exposes none (called on its loop).
    static func make(for channel: any Channel) -> DirectSocketWriter? {
        let duplicate = try? channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { fcntl($0, F_DUPFD_CLOEXEC, 0) }
        guard let descriptor = duplicate, descriptor >= 0 else { return nil }
        return DirectSocketWriter(descriptor: descriptor, channel: channel)
    }

    private init(descriptor: Int32, channel: any Channel) {
        self.state = Mutex(State(descriptor: descriptor))
        self.channel = channel
    }

    /// Writes `frames` in order, after what waits; `hold` keeps small messages back for
    /// `releaseHeld`. A close frame closes the socket once everything before it is written.
    func write(_ frames: [ConnectionWriter.Frame], hold: Bool) {
        let closeNow = state.withLock { state -> Bool in
            guard state.descriptor != nil else { return false }
            for frame in frames {
                if hold, state.waiting.isEmpty, case .message(let message) = frame {
                    var bytes = encoder.encodeContiguous(message, allocator: allocator)
                    if state.held == nil { state.held = bytes } else { state.held!.writeBuffer(&bytes) }
                    continue
                }
                releaseHeld(&state)
                state.waiting.append(.frame(frame))
            }
            return drain(&state)
        }
        if closeNow { channel.close(promise: nil) }
    }

    /// Writes what was held back.
    func releaseHeld() {
        let closeNow = state.withLock { state -> Bool in
            releaseHeld(&state)
            return drain(&state)
        }
        if closeNow { channel.close(promise: nil) }
    }

    /// The connection closed: the descriptor goes, and with it what waits.
    func connectionClosed() {
        state.withLock { closeDescriptor(&$0) }
    }

    private func releaseHeld(_ state: inout State) {
        guard let held = state.held else { return }
        state.held = nil
        state.waiting.append(.bytes(held))
    }

    /// Writes waiting frames while the socket takes them; returns whether a close frame
    /// was reached (the socket's descriptor is closed then, the channel is to close).
    private func drain(_ state: inout State) -> Bool {
        guard let descriptor = state.descriptor else { return false }
        while true {
            if state.rest == nil {
                guard let frame = state.waiting.popFirst() else { break }
                switch frame {
                case .frame(.message(let message)):
                    state.rest = encoder.encodeContiguous(message, allocator: allocator)
                case .bytes(let bytes):
                    state.rest = bytes
                case .frame(.chunks(let tag, let index, let storage, let offset)):
                    // One chunk at a time, the rest first in line, as the event loop does.
                    let total = storage.segment.byteCount
                    let length = min(StreamedAttachments.chunkLength, total - offset)
                    if offset + length < total { state.waiting.prepend(.frame(.chunks(tag: tag, index: index, storage: storage, offset: offset + length))) }
                    let chunk = ConnectionWriter.chunk(tag: tag, index: index, storage: storage, offset: offset, allocator: allocator)
                    state.rest = encoder.encodeContiguous(chunk, allocator: allocator)
                case .frame(.close):
                    closeDescriptor(&state)
                    return true
                }
            }
            guard var rest = state.rest else { continue }
            let written = rest.withUnsafeReadableBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                // The peer is gone; the event loop sees the connection close.
                closeDescriptor(&state)
                return false
            }
            rest.moveReaderIndex(forwardBy: written)
            state.rest = rest.readableBytes == 0 ? nil : rest
        }
        if state.rest != nil || !state.waiting.isEmpty {
            watchForRoom(&state, descriptor: descriptor)
        } else if let source = state.source {
            state.source = nil
            source.cancel()
        }
        return false
    }

    /// Arms the source that drains what waits when the socket has room again.
    private func watchForRoom(_ state: inout State, descriptor: Int32) {
        guard state.source == nil else { return }
        let source = DispatchSource.makeWriteSource(fileDescriptor: descriptor, queue: Self.queue)
        source.setEventHandler { [self] in
            let closeNow = self.state.withLock { drain(&$0) }
            if closeNow { channel.close(promise: nil) }
        }
        state.source = source
        source.resume()
    }

    private func closeDescriptor(_ state: inout State) {
        state.waiting.removeAll()
        state.rest = nil
        state.held = nil
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
