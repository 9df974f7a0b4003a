import DequeModule
import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization

/// Carries attachments as bytes on the connection itself, for peers that share no
/// descriptor channel with this process (daemons on other machines).
///
/// Sending: each attachment goes in chunks ahead of its message, copied once from the
/// shared memory into the outgoing buffer, and only while the connection is writable:
/// whatever the size, at most a few chunks are buffered. Every message goes through
/// the same queue, so none overtakes another's attachments.
///
/// Receiving: the first chunk of an attachment allocates a shared segment of its size
/// (refused above `maxAttachmentLength`); the chunks are written straight into it, the
/// only copy beyond the network read. The message that follows hands the complete
/// segments to its job or result, frozen like any received memory.
final class StreamedAttachments: AttachmentCarrier {
    /// Bytes per chunk.
    static let chunkLength = 256 << 10

    private enum Item {
        case frame(ByteBuffer)
        case attachment(tag: UInt64, index: UInt32, storage: SharedStorage, offset: Int)
    }

    private struct Incoming {
        let segment: SharedSegment
        var filled: Int
    }

    private struct Key: Hashable {
        let tag: UInt64
        let index: UInt32
    }

    private let channel: any Channel
    private let maxAttachmentLength: Int
    private let outgoing = Mutex<Deque<Item>>([])
    private let incoming = Mutex<[Key: Incoming]>([:])

    init(channel: any Channel, maxAttachmentLength: Int) {
        self.channel = channel
        self.maxAttachmentLength = maxAttachmentLength
    }

    func write(_ message: WireMessage, attachments: [SharedStorage]) throws {
        var message = message
        var items: [Item] = []
        if !attachments.isEmpty, let tag = message.attachmentTag {
            message = message.withAttachments(attachments.map { AttachmentInfo(byteCount: UInt64($0.segment.byteCount)) })
            for (index, storage) in attachments.enumerated() {
                items.append(.attachment(tag: tag, index: UInt32(index), storage: storage, offset: 0))
            }
        }
        items.append(.frame(message.frame(allocator: channel.allocator)))
        outgoing.withLock { $0.append(contentsOf: items) }
        if channel.eventLoop.inEventLoop {
            pump()
        } else {
            channel.eventLoop.execute { self.pump() }
        }
    }

    func writabilityChanged() {
        pump()
    }

    /// Writes queued frames and chunks while the connection takes them (on its loop).
    private func pump() {
        var wrote = false
        while channel.isWritable, let frame = nextFrame() {
            channel.write(frame, promise: nil)
            wrote = true
            if frame.readableBytes > 4096 { channel.flush() }
        }
        if wrote { channel.flush() }
    }

    /// The next frame to write: a queued message, or the next chunk of an attachment.
    private func nextFrame() -> ByteBuffer? {
        outgoing.withLock { queue -> ByteBuffer? in
            guard let head = queue.first else { return nil }
            switch head {
            case .frame(let frame):
                queue.removeFirst()
                return frame
            case .attachment(let tag, let index, let storage, let offset):
                let total = storage.segment.byteCount
                let length = min(Self.chunkLength, total - offset)
                let frame = AttachmentChunk.frame(
                    tag: tag, index: index, byteCount: UInt64(total), offset: UInt64(offset),
                    bytes: UnsafeRawBufferPointer(start: storage.segment.payload + offset, count: length), allocator: channel.allocator
                )
                if offset + length == total {
                    queue.removeFirst()
                } else {
                    queue[0] = .attachment(tag: tag, index: index, storage: storage, offset: offset + length)
                }
                return frame
            }
        }
    }

    func received(_ chunk: AttachmentChunk) throws {
        let key = Key(tag: chunk.tag, index: chunk.index)
        try incoming.withLock { incoming in
            if incoming[key] == nil {
                guard chunk.offset == 0 else { throw SharedMemoryError("a streamed attachment began at offset \(chunk.offset)") }
                guard chunk.byteCount <= UInt64(maxAttachmentLength) else {
                    throw SharedMemoryError("a streamed attachment of \(chunk.byteCount) bytes exceeds the limit of \(maxAttachmentLength)")
                }
                incoming[key] = Incoming(segment: try SharedSegment.allocate(byteCount: Int(chunk.byteCount)), filled: 0)
            }
            var entry = incoming[key]!
            guard chunk.offset == UInt64(entry.filled), UInt64(entry.segment.byteCount) == chunk.byteCount else {
                throw SharedMemoryError("a streamed attachment's chunk at \(chunk.offset) does not follow the \(entry.filled) bytes received")
            }
            chunk.bytes.withUnsafeReadableBytes { bytes in
                guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
                (entry.segment.payload + entry.filled).copyMemory(from: source, byteCount: bytes.count)
            }
            entry.filled += chunk.bytes.readableBytes
            incoming[key] = entry
        }
    }

    func receive(_ infos: [AttachmentInfo], tag: UInt64) throws -> SharedAttachmentReader {
        if let named = infos.first(where: \.isKept) {
            throw SharedMemoryError("an attachment names shared memory \(named.name) kept from before, on a connection that streams every attachment")
        }
        let segments: [SharedSegment] = try incoming.withLock { incoming in
            try infos.indices.map { index in
                guard let entry = incoming.removeValue(forKey: Key(tag: tag, index: UInt32(index))),
                      entry.filled == entry.segment.byteCount, UInt64(entry.filled) == infos[index].byteCount else {
                    throw SharedMemoryError("attachment \(index) of message \(tag) did not arrive whole before it")
                }
                return entry.segment
            }
        }
        return SharedAttachmentReader(storages: segments.map { segment in
            let storage = SharedStorage(segment: segment)
            storage.freeze()
            return storage
        })
    }

    /// Streamed memory is a copy: nothing is lent, nothing comes back.
    func peerReleased(_ tokens: [UInt64]) {}

    /// Streamed memory is a copy: this side holds none of the peer's slots.
    func peerWantsReleases() {}

    /// Streamed memory is a copy: this side keeps nothing under the peer's names.
    func peerForgot(_ names: [UInt64]) {}

    func connectionClosed() {
        outgoing.withLock { $0.removeAll() }
        incoming.withLock { $0.removeAll() }
    }
}
