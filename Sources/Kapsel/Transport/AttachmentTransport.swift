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
/// A pool slot lent again and again is sent once: the receiver keeps it under the
/// name the lender gave it, and later loans only name it (see `LentSlotNames`); the
/// lender says `forget` when the slot's pool is gone, and a connection's kept memory
/// goes with it.
///
/// A slot this side lends stays held until the peer sends its token back (`released`),
/// or until this transport is gone with its connection; when its pool waits for a slot,
/// the peer is asked for the tokens it holds back (`releasesWanted`). A pooled
/// attachment this side receives gives its token back when its last view dies, with
/// the next message this side writes (see `ReleaseSender`).
final class AttachmentTransport: AttachmentCarrier {
    private let descriptors: DescriptorChannel
    /// The connection's writer, for the messages this transport sends of its own, until
    /// the connection closes (the writer holds this transport: the link is dropped then).
    private let writer: Mutex<ConnectionWriter?>
    /// The pool slots lent to the peer and not given back, by release token, with their sizes.
    private let lent = Mutex<[UInt64: (hold: RemoteHold, bytes: Int)]>([:])
    /// This side asked the peer for its tokens and none has come since.
    private let askedForReleases = Atomic<Bool>(false)
    private let nextToken = Atomic<UInt64>(1)
    /// The names of the slots this side lent to the peer.
    private let names = Mutex(LentSlotNames())
    /// The peer's pool slots this side keeps between loans, by the peer's names.
    private let kept = Mutex<[UInt64: SharedSegment]>([:])
    /// Tokens of the peer's slots this side has dropped, on their way back.
    private let releases: ReleaseSender

    init(descriptors: DescriptorChannel, writer: ConnectionWriter) {
        self.descriptors = descriptors
        self.writer = Mutex(writer)
        self.releases = ReleaseSender(writer: writer)
    }

    /// Sends the message's descriptors now, so the peer finds them when it reads the
    /// message; the release tokens waiting to go back to the peer go just before it.
    func carry(_ message: OutgoingMessage) throws -> CarriedMessage {
        let attachments = message.attachments
        let infos = attachments.isEmpty ? [] : try send(attachments, tag: message.tag)
        let tokens = releases.takePending()
        return CarriedMessage(ahead: tokens.isEmpty ? [] : [.message(.released(tokens: tokens))], message: message.message(announcing: infos))
    }

    /// Sends one of this transport's own messages, from the connection's loop.
    private func sendSoon(_ message: WireMessage) {
        writer.withLock { $0 }?.sendSoon(message)
    }

    /// Nothing is streamed over a connection with a descriptor channel.
    func received(_ chunk: AttachmentChunk) throws {
        throw SharedMemoryError("an attachment chunk arrived on a connection that passes descriptors")
    }

    /// Sends the descriptors of `storages` for message `tag` (but for pool slots the
    /// peer keeps); returns what the message must say about them.
    private func send(_ storages: [SharedStorage], tag: UInt64) throws -> [AttachmentInfo] {
        var infos: [AttachmentInfo] = []
        var holds: [(UInt64, (hold: RemoteHold, bytes: Int))] = []
        var carried: [SharedSegment] = []
        for storage in storages {
            var info = AttachmentInfo(byteCount: UInt64(storage.segment.byteCount))
            if let lease = storage.lease {
                let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
                holds.append((token, (lease.holdRemotely { [weak self] in self?.askForReleases() }, storage.segment.byteCount)))
                let slot = lease.slot
                let naming = names.withLock { $0.lend(slot, token: token) }
                if naming.isNewPool {
                    lease.whenPoolGone(key: ObjectIdentifier(self)) { [weak self] in self?.poolGone(slot.pool) }
                }
                info = AttachmentInfo(byteCount: info.byteCount, releaseToken: token, name: naming.name, isKept: naming.isKept)
            }
            if !info.isKept { carried.append(storage.segment) }
            infos.append(info)
        }
        do {
            try descriptors.send(tag: tag, segments: carried)
        } catch {
            names.withLock { $0.abandoned(holds.map(\.0)) }
            throw error
        }
        lent.withLock { lent in
            for (token, hold) in holds { lent[token] = hold }
        }
        return infos
    }

    /// Receives the attachments `infos` announce for message `tag`.
    func receive(_ infos: [AttachmentInfo], tag: UInt64) throws -> [SharedStorage] {
        var received = try descriptors.receive(tag: tag, count: infos.count { !$0.isKept })[...]
        // Whatever is left on failure was never adopted.
        defer { received.forEach { close($0) } }
        var storages: [SharedStorage] = []
        for info in infos {
            let segment = info.isKept ? try keptSegment(info) : try adopt(received.removeFirst(), info)
            let token = info.releaseToken
            let releases = self.releases
            let release: (@Sendable () -> Void)? = token == 0 ? nil : { @Sendable in releases.add(token) }
            storages.append(SharedStorage(segment: segment, onRelease: release))
        }
        return storages
    }

    /// Maps the memory `descriptor` brings, keeping it under its name if it has one (or
    /// using what is kept under that name already).
    private func adopt(_ descriptor: Int32, _ info: AttachmentInfo) throws -> SharedSegment {
        if info.name != 0, let segment = kept.withLock({ $0[info.name] }) {
            close(descriptor)
            return try checked(segment, info)
        }
        let segment = try SharedSegment.adopt(descriptor: descriptor, minimumByteCount: Int(clamping: info.byteCount))
        if info.name != 0 { kept.withLock { $0[info.name] = segment } }
        return segment
    }

    /// The memory kept under the name `info` gives.
    private func keptSegment(_ info: AttachmentInfo) throws -> SharedSegment {
        guard let segment = kept.withLock({ $0[info.name] }) else {
            throw SharedMemoryError("an attachment names shared memory \(info.name) that the peer never sent")
        }
        return try checked(segment, info)
    }

    private func checked(_ segment: SharedSegment, _ info: AttachmentInfo) throws -> SharedSegment {
        guard UInt64(segment.byteCount) >= info.byteCount else {
            throw SharedMemoryError("shared memory \(info.name) holds \(segment.byteCount) bytes, fewer than the \(info.byteCount) announced")
        }
        return segment
    }

    /// The names of the peer's slots kept now, in order (tests).
    var keptNames: [UInt64] { kept.withLock { $0.keys.sorted() } }

    /// The connection closed: nothing more is sent, and the memory kept for the peer's
    /// next loans goes.
    func connectionClosed() {
        writer.withLock { $0 = nil }
        releases.connectionClosed()
        let dropped = kept.withLock { kept in
            defer { kept = [:] }
            return kept
        }
        withExtendedLifetime(dropped) {}
    }

    /// The peer's pool of these slots is gone: what is kept of them goes.
    func peerForgot(_ names: [UInt64]) {
        let dropped = kept.withLock { kept in names.compactMap { kept.removeValue(forKey: $0) } }
        withExtendedLifetime(dropped) {}
    }

    /// A pool whose slots were named to the peer is gone: the peer drops what it keeps.
    private func poolGone(_ pool: UInt64) {
        let gone = names.withLock { $0.poolGone(pool) }
        guard !gone.isEmpty else { return }
        sendSoon(.forget(names: gone))
    }

    /// The peer dropped its last views of these lent slots.
    func peerReleased(_ tokens: [UInt64]) {
        askedForReleases.store(false, ordering: .relaxed)
        names.withLock { $0.returned(tokens) }
        let holds = lent.withLock { lent in tokens.compactMap { lent.removeValue(forKey: $0) } }
        // The slots go back to their pools here, outside the lock.
        withExtendedLifetime(holds) {}
    }

    /// The bytes of the pool slots this side lent to the peer that the peer still holds.
    var lentByteCount: Int {
        lent.withLock { $0.values.reduce(0) { $0 + $1.bytes } }
    }

    /// The peer waits for one of its slots this side holds.
    func peerWantsReleases() {
        releases.peerWantsReleases()
    }

    /// A pool whose slots the peer holds waits for one: asks the peer for its tokens,
    /// once until some come back.
    private func askForReleases() {
        guard askedForReleases.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        sendSoon(.releasesWanted)
    }
}
