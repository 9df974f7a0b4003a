import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Moves one connection's shared-memory attachments: their descriptors over the
/// connection's `DescriptorChannel` (sent before the message that refers to them),
/// and the release tokens of pool slots lent to the peer.
///
/// A slot this side lends stays held until the peer sends its token back (`released`),
/// or until this transport is gone with its connection; when its pool waits for a slot,
/// the peer is asked for the tokens it holds back (`releasesWanted`). A pooled
/// attachment this side receives gives its token back when its last view dies, with
/// the next message this side writes (see `ReleaseSender`).
final class AttachmentTransport: AttachmentCarrier {
    private let descriptors: DescriptorChannel
    private let channel: any Channel
    private let lent = Mutex<[UInt64: RemoteHold]>([:])
    /// This side asked the peer for its tokens and none has come since.
    private let askedForReleases = Atomic<Bool>(false)
    private let nextToken = Atomic<UInt64>(1)
    /// Mappings of the peer's pool slots, kept between loans.
    private let slotMappings = MappingCache()
    /// Tokens of the peer's slots this side has dropped, on their way back.
    private let releases: ReleaseSender

    init(descriptors: DescriptorChannel, channel: any Channel) {
        self.descriptors = descriptors
        self.channel = channel
        self.releases = ReleaseSender(channel: channel)
    }

    /// Descriptors first, then the frame, so the peer finds them when it reads the
    /// message; the release tokens waiting to go back to the peer go just before it.
    func write(_ message: WireMessage, attachments: [SharedStorage]) throws {
        var message = message
        if !attachments.isEmpty, let tag = message.attachmentTag {
            message = message.withAttachments(try send(attachments, tag: tag))
        }
        let tokens = releases.takePending()
        if !tokens.isEmpty {
            channel.write(WireMessage.released(tokens: tokens).frame(allocator: channel.allocator), promise: nil)
        }
        channel.writeAndFlush(message.frame(allocator: channel.allocator), promise: nil)
    }

    /// Nothing is streamed over a connection with a descriptor channel.
    func received(_ chunk: AttachmentChunk) throws {
        throw SharedMemoryError("an attachment chunk arrived on a connection that passes descriptors")
    }

    func writabilityChanged() {}

    /// Sends the descriptors of `storages` for message `tag`; returns what the message
    /// must say about them.
    private func send(_ storages: [SharedStorage], tag: UInt64) throws -> [AttachmentInfo] {
        var infos: [AttachmentInfo] = []
        var holds: [(UInt64, RemoteHold)] = []
        for storage in storages {
            var token: UInt64 = 0
            if let lease = storage.lease {
                token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
                holds.append((token, lease.holdRemotely { [weak self] in self?.askForReleases() }))
            }
            infos.append(AttachmentInfo(byteCount: UInt64(storage.segment.byteCount), releaseToken: token))
        }
        try descriptors.send(tag: tag, segments: storages.map(\.segment))
        lent.withLock { lent in
            for (token, hold) in holds { lent[token] = hold }
        }
        return infos
    }

    /// Receives the attachments `infos` announce for message `tag`.
    func receive(_ infos: [AttachmentInfo], tag: UInt64) throws -> SharedAttachmentReader {
        let received = try descriptors.receive(tag: tag, count: infos.count)
        var storages: [SharedStorage] = []
        for (position, (descriptor, info)) in zip(received, infos).enumerated() {
            let segment: SharedSegment
            do {
                let isPoolSlot = info.releaseToken != 0
                segment = try SharedSegment.adopt(
                    descriptor: descriptor, minimumByteCount: Int(clamping: info.byteCount), cache: isPoolSlot ? slotMappings : nil
                )
            } catch {
                received[(position + 1)...].forEach { close($0) }
                throw error
            }
            let token = info.releaseToken
            let releases = self.releases
            let release: (@Sendable () -> Void)? = token == 0 ? nil : { @Sendable in releases.add(token) }
            storages.append(SharedStorage(segment: segment, onRelease: release))
        }
        return SharedAttachmentReader(storages: storages)
    }

    /// The connection closed: the peer will lend no more slots, so the mappings kept for
    /// its next loans go.
    func connectionClosed() {
        slotMappings.purge()
    }

    /// The peer dropped its last views of these lent slots.
    func peerReleased(_ tokens: [UInt64]) {
        askedForReleases.store(false, ordering: .relaxed)
        let holds = lent.withLock { lent in tokens.compactMap { lent.removeValue(forKey: $0) } }
        // The slots go back to their pools here, outside the lock.
        withExtendedLifetime(holds) {}
    }

    /// The peer waits for one of its slots this side holds.
    func peerWantsReleases() {
        releases.peerWantsReleases()
    }

    /// A pool whose slots the peer holds waits for one: asks the peer for its tokens,
    /// once until some come back.
    private func askForReleases() {
        guard askedForReleases.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        channel.writeAndFlush(WireMessage.releasesWanted.frame(allocator: channel.allocator), promise: nil)
    }
}
