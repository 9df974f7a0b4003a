import KapselSharedMemory
import KapselWire
import NIOCore

/// How one connection carries the shared memory its messages refer to: as descriptors
/// over a local descriptor channel (`AttachmentTransport`, no copy), or as bytes
/// streamed on the connection itself ahead of the message (`StreamedAttachments`, for
/// daemons on other machines).
protocol AttachmentCarrier: AnyObject, Sendable {
    /// Writes `message` on the connection with `attachments` carried ahead of it (its
    /// attachment information filled in). Throws if they cannot be carried.
    func write(_ message: WireMessage, attachments: [SharedStorage]) throws
    /// The attachments `infos` announce for the message tagged `tag`.
    func receive(_ infos: [AttachmentInfo], tag: UInt64) throws -> SharedAttachmentReader
    /// A piece of a streamed attachment arrived.
    func received(_ chunk: AttachmentChunk) throws
    /// The peer dropped its last views of memory this side lent from a pool.
    func peerReleased(_ tokens: [UInt64])
    /// The peer waits for a slot of its pools this side holds.
    func peerWantsReleases()
    /// The peer's pool slots of these names are gone: this side drops what it keeps of them.
    func peerForgot(_ names: [UInt64])
    /// The connection can take more data again.
    func writabilityChanged()
    /// The connection closed.
    func connectionClosed()
}

/// The attachments a message announces (nil when it announces none).
func receiveAttachments(_ infos: [AttachmentInfo], tag: UInt64, through carrier: any AttachmentCarrier) throws -> SharedAttachmentReader? {
    guard !infos.isEmpty else { return nil }
    return try carrier.receive(infos, tag: tag)
}

/// Writes a daemon's result (`wrap` makes the message) with its shared memory; if that
/// cannot be carried, the result becomes a failure saying so.
func writeResult(_ result: RunResult, attachments: [SharedStorage], through carrier: any AttachmentCarrier, as wrap: (RunResult) -> WireMessage) {
    do {
        try carrier.write(wrap(result), attachments: attachments)
    } catch {
        var failed = result
        failed.attachments = []
        failed.outcome = .failure(FailureReport(
            reason: .resultEncodingFailed, errorType: String(reflecting: type(of: error)),
            message: "the result's shared memory could not be sent: \(error)", location: "daemon"))
        try? carrier.write(wrap(failed), attachments: [])
    }
}

/// The carrier for a connection: descriptors when the peer shares a descriptor channel
/// with this process, streamed bytes otherwise.
func makeCarrier(channel: any Channel, descriptors: DescriptorChannel?, limits: WireLimits) -> any AttachmentCarrier {
    if let descriptors { return AttachmentTransport(descriptors: descriptors, channel: channel) }
    return StreamedAttachments(channel: channel, maxAttachmentLength: limits.maxAttachmentLength)
}
