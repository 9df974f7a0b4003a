/// Hard limits on every length read from the wire.
public struct WireLimits: Sendable, Hashable {
    /// At most this many shared-memory attachments travel with one message: the
    /// descriptors one `sendmsg` can carry.
    public static let maxAttachments = 250

    /// The largest frame accepted once a connection is authenticated. Large data goes
    /// through shared memory, not frames, so this only bounds job arguments and results.
    public var maxFrameLength: Int
    /// The largest frame accepted before the peer has authenticated: a stranger can
    /// never make the other side buffer more than this.
    public var maxHandshakeFrameLength: Int
    /// The largest attachment a peer may stream (to a daemon on another machine, or
    /// back from it): the receiver allocates this much shared memory for it.
    public var maxAttachmentLength: Int

    /// Creates limits: 256 MiB frames, 4 KiB handshake frames and 64 GiB streamed
    /// attachments by default.
    public init(maxFrameLength: Int = 256 << 20, maxHandshakeFrameLength: Int = 4096, maxAttachmentLength: Int = 64 << 30) {
        precondition(maxFrameLength >= 64 && maxHandshakeFrameLength >= 64, "frame limits below 64 bytes cannot carry a handshake")
        self.maxFrameLength = min(maxFrameLength, Int(UInt32.max))
        self.maxHandshakeFrameLength = maxHandshakeFrameLength
        self.maxAttachmentLength = maxAttachmentLength
    }
}
