import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization

/// Carries attachments as bytes on the connection itself, for peers that share no
/// descriptor channel with this process (daemons on other machines).
///
/// Sending: each attachment goes in chunks ahead of its message, copied once from the
/// shared memory into the outgoing buffer by the connection's writer, and only while
/// the connection is writable: whatever the size, at most a few chunks are buffered.
/// Every frame goes through the writer's one queue, so none overtakes another's
/// attachments.
///
/// Receiving: the first chunk of an attachment allocates a shared segment of its size
/// (refused above `maxAttachmentLength`); the chunks are written straight into it, the
/// only copy beyond the network read. The message that follows hands the complete
/// segments to its job or result, frozen like any received memory.
final class StreamedAttachments: AttachmentCarrier {
    /// Bytes per chunk.
    static let chunkLength = 256 << 10

    private struct Incoming {
        let segment: SharedSegment
        var filled: Int
    }

    private struct Key: Hashable {
        let tag: UInt64
        let index: UInt32
    }

    private let maxAttachmentLength: Int
    private let incoming = Mutex<[Key: Incoming]>([:])

    init(maxAttachmentLength: Int) {
        self.maxAttachmentLength = maxAttachmentLength
    }

    /// The message's attachments as chunks ahead of it, which the writer copies from the
    /// shared memory one at a time as the connection takes them.
    func carry(_ message: OutgoingMessage) throws -> CarriedMessage {
        let attachments = message.attachments
        let chunks = attachments.enumerated().map { index, storage in
            ConnectionWriter.Frame.chunks(tag: message.tag, index: UInt32(index), storage: storage, offset: 0)
        }
        return CarriedMessage(ahead: chunks, message: message.message(announcing: attachments.map { AttachmentInfo(byteCount: UInt64($0.segment.byteCount)) }))
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

    func receive(_ infos: [AttachmentInfo], tag: UInt64) throws -> [SharedStorage] {
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
        return segments.map { segment in
            let storage = SharedStorage(segment: segment)
            storage.freeze()
            return storage
        }
    }

    /// Streamed memory is a copy: nothing is lent, nothing comes back.
    func peerReleased(_ tokens: [UInt64]) {}

    /// Streamed memory is a copy: this side holds none of the peer's slots.
    func peerWantsReleases() {}

    /// Streamed memory is a copy: this side keeps nothing under the peer's names.
    func peerForgot(_ names: [UInt64]) {}

    func connectionClosed() {
        incoming.withLock { $0.removeAll() }
    }

    /// Streamed memory is copied to the peer, never lent.
    var lentByteCount: Int { 0 }
}
