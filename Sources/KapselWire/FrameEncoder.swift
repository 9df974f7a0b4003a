import NIOCore

/// Writes `WireMessage`s as frames: the outbound end of a Kapsel connection's pipeline,
/// opposite `FrameDecoder`.
///
/// ```swift
/// try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limits: limits, handshakeFrames: 1)))
/// try channel.pipeline.syncOperations.addHandler(FrameEncoder())
/// ```
///
/// A message whose payload (a job's or a value's bytes, a streamed chunk) holds at least
/// `copyLimit` bytes goes out as two buffers — its head, then the payload as it is — so
/// large payloads are never copied into a frame; the socket writes both in one call.
public final class FrameEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = WireMessage
    public typealias OutboundOut = ByteBuffer

    private let copyLimit: Int

    /// Creates an encoder that copies payloads of fewer than `copyLimit` bytes into their frame.
    public init(copyLimit: Int = 16 << 10) {
        self.copyLimit = copyLimit
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let (head, payload) = unwrapOutboundIn(data).frameParts(allocator: context.channel.allocator, copyLimit: copyLimit)
        guard let payload else {
            context.write(wrapOutboundOut(head), promise: promise)
            return
        }
        context.write(wrapOutboundOut(head), promise: nil)
        context.write(wrapOutboundOut(payload), promise: promise)
    }
}
