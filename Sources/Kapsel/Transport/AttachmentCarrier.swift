import KapselSharedMemory
import KapselWire
import NIOCore

/// How one connection carries the shared memory its messages refer to: as descriptors
/// over a local descriptor channel (`AttachmentTransport`, no copy), or as bytes
/// streamed on the connection itself ahead of the message (`StreamedAttachments`, for
/// daemons on other machines). The connection's `ConnectionWriter` asks it for the
/// frames of each message it sends; the connection's handler hands it what concerns it.
protocol AttachmentCarrier: AnyObject, Sendable {
    /// `message` as it goes out with its shared memory: the message announcing that
    /// memory, and what goes ahead of it. Descriptors are sent now, before the message is
    /// written; streamed memory goes as chunk frames ahead of it. Throws if the memory
    /// cannot be carried.
    func carry(_ message: OutgoingMessage) throws -> CarriedMessage
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
    /// The bytes of shared memory from this side's pools that the peer holds now.
    var lentByteCount: Int { get }
}

/// A message ready for the connection: the frames that go ahead of it (its memory's
/// chunks, release tokens on their way back), then the message itself.
struct CarriedMessage {
    var ahead: [ConnectionWriter.Frame] = []
    var message: WireMessage
}

extension AttachmentCarrier {
    /// The attachments a message announces (none when it announces none).
    func receiveAttachments(_ infos: [AttachmentInfo], tag: UInt64) throws -> [SharedStorage] {
        infos.isEmpty ? [] : try receive(infos, tag: tag)
    }
}

/// The carrier for a connection written by `writer`: descriptors when the peer shares a
/// descriptor channel with this process, streamed bytes otherwise.
///
/// A descriptor carrier sends messages of its own through `writer` until the connection
/// closes (`connectionClosed` ends that link, and with it the reference cycle).
func makeCarrier(writer: ConnectionWriter, descriptors: DescriptorChannel?, limits: WireLimits) -> any AttachmentCarrier {
    if let descriptors { return AttachmentTransport(descriptors: descriptors, writer: writer) }
    return StreamedAttachments(maxAttachmentLength: limits.maxAttachmentLength)
}
