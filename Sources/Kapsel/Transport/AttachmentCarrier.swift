import KapselSharedMemory
import KapselWire
import NIOCore

/// How one connection carries the shared memory its messages refer to: as descriptors
/// over a local descriptor channel (`AttachmentTransport`, no copy), or as bytes
/// streamed on the connection itself ahead of the message (`StreamedAttachments`, for
/// daemons on other machines). The connection's `ConnectionWriter` asks it for the
/// frames of each message it sends; the connection's handler hands it what concerns it.
protocol AttachmentCarrier: AnyObject, Sendable {
    /// The frames that carry `message` with its shared memory ahead of it, in order, the
    /// message announcing that memory. Descriptors are sent now, before the message is
    /// written; streamed memory goes as chunk frames ahead of it. Throws if the memory
    /// cannot be carried.
    func frames(for message: OutgoingMessage) throws -> [ConnectionWriter.Frame]
    /// The attachments `infos` announce for the message tagged `tag`.
    func receive(_ infos: [AttachmentInfo], tag: UInt64) throws -> [SharedStorage]
    /// A piece of a streamed attachment arrived.
    func received(_ chunk: AttachmentChunk) throws
    /// The peer dropped its last views of memory this side lent from a pool.
    func peerReleased(_ tokens: [UInt64])
    /// The peer waits for a slot of its pools this side holds.
    func peerWantsReleases()
    /// The peer's pool slots of these names are gone: this side drops what it keeps of them.
    func peerForgot(_ names: [UInt64])
    /// The connection closed.
    func connectionClosed()
}

extension AttachmentCarrier {
    /// The attachments a message announces (none when it announces none).
    func receiveAttachments(_ infos: [AttachmentInfo], tag: UInt64) throws -> [SharedStorage] {
        infos.isEmpty ? [] : try receive(infos, tag: tag)
    }
}

/// The carrier for a connection written by `writer`: descriptors when the peer shares a
/// descriptor channel with this process, streamed bytes otherwise.
func makeCarrier(writer: ConnectionWriter, descriptors: DescriptorChannel?, limits: WireLimits) -> any AttachmentCarrier {
    if let descriptors { return AttachmentTransport(descriptors: descriptors, writer: writer) }
    return StreamedAttachments(maxAttachmentLength: limits.maxAttachmentLength)
}
