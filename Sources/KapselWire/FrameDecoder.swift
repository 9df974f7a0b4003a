import NIOCore

/// Splits a byte stream into Kapsel messages: a 4-byte big-endian length, then that
/// many bytes, parsed as one `WireMessage`.
///
/// The length is checked before a single byte of the body is buffered: the first
/// `handshakeFrames` frames may be at most `limits.maxHandshakeFrameLength` long, the
/// rest at most `limits.maxFrameLength`. A violation throws `WireError`, which makes
/// `ByteToMessageHandler` fire an error; the connection's handler closes it.
public struct FrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = WireMessage

    private let limits: WireLimits
    private var handshakeFramesLeft: Int

    /// Creates a decoder. A host reads one handshake frame (hello), a daemon two
    /// (challenge, then welcome or refused).
    public init(limits: WireLimits, handshakeFrames: Int) {
        self.limits = limits
        self.handshakeFramesLeft = handshakeFrames
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let message = try nextMessage(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// Takes one whole message off the front of `buffer`, or returns nil (consuming
    /// nothing) when the frame is not complete yet.
    public mutating func nextMessage(from buffer: inout ByteBuffer) throws(WireError) -> WireMessage? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        let limit = handshakeFramesLeft > 0 ? limits.maxHandshakeFrameLength : limits.maxFrameLength
        guard Int(length) <= limit else {
            throw WireError(.oversizedFrame, "a frame of \(length) bytes exceeds the limit of \(limit) bytes")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        let body = buffer.readSlice(length: Int(length))!
        if handshakeFramesLeft > 0 { handshakeFramesLeft -= 1 }
        return try WireMessage.parse(frameBody: body)
    }
}
