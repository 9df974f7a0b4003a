import NIOCore

/// Turns `WireMessage`s into frames: the one place a Kapsel connection's outgoing bytes
/// are made, opposite `FrameDecoder`. A connection's one writer (`ConnectionWriter`)
/// encodes every frame with it and hands the buffers to the channel.
///
/// ```swift
/// let (head, payload) = FrameEncoder().encode(.heartbeat, allocator: channel.allocator)
/// ```
///
/// A message whose payload (a job's or a value's bytes, a streamed chunk) holds at least
/// `copyLimit` bytes comes out as two buffers — its head, then the payload as it is — so
/// large payloads are never copied into a frame; the socket writes both in one call.
///
/// It is a value the writer calls rather than a handler in the pipeline: a handler takes
/// messages as `NIOAny`, which boxes every message and casts it back, and on the hot path
/// that cost measured several per cent of a pool's throughput.
public struct FrameEncoder: Sendable {
    /// Payloads below this many bytes are copied into their frame's head.
    public let copyLimit: Int

    /// Creates an encoder that copies payloads of fewer than `copyLimit` bytes into their frame.
    public init(copyLimit: Int = 16 << 10) {
        self.copyLimit = copyLimit
    }

    /// `message` as one frame: its head (the length prefix and every field but a large
    /// payload), and that payload, to write after the head uncopied.
    public func encode(_ message: WireMessage, allocator: ByteBufferAllocator) -> (head: ByteBuffer, payload: ByteBuffer?) {
        message.frameParts(allocator: allocator, copyLimit: copyLimit)
    }

    /// Appends `message`'s frame to `buffer` — its head, and its payload when that is
    /// smaller than `copyLimit` — and returns a larger payload, which completes the frame
    /// when written right after `buffer`'s bytes. A writer that sends many frames at once
    /// gathers them this way in one buffer, with no buffer of its own per message.
    public func append(_ message: WireMessage, to buffer: inout ByteBuffer) -> ByteBuffer? {
        message.appendFrameParts(to: &buffer, copyLimit: copyLimit)
    }

    /// `message` as one frame in one buffer, its payload copied in after the head: for a
    /// writer that hands the socket one buffer at a time.
    public func encodeContiguous(_ message: WireMessage, allocator: ByteBufferAllocator) -> ByteBuffer {
        var (head, payload) = encode(message, allocator: allocator)
        if var payload { head.writeBuffer(&payload) }
        return head
    }
}
