import KapselSharedMemory
import KapselWire
import NIOCore
import NIOEmbedded
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// A pool slot lent again and again goes once as a descriptor, then by name; the
/// receiver drops what it keeps when the lender's pool goes or the connection closes.
@Suite("Pool slots lent by name")
struct SlotNamingTests {
    /// Two ends of one connection: each end's messages come out of its embedded channel.
    struct Connection {
        let lenderChannel = EmbeddedChannel()
        let lenderWriter: ConnectionWriter
        let lender: AttachmentTransport
        let receiverWriter = ConnectionWriter(channel: EmbeddedChannel())
        let receiver: AttachmentTransport

        init() throws {
            let (lenderEnd, receiverSocket) = try DescriptorChannel.pair()
            lenderWriter = ConnectionWriter(channel: lenderChannel)
            lender = AttachmentTransport(descriptors: lenderEnd, writer: lenderWriter)
            lenderWriter.install(lender)
            receiver = AttachmentTransport(descriptors: DescriptorChannel(socket: receiverSocket), writer: receiverWriter)
            receiverWriter.install(receiver)
        }

        /// Lends `storage` in a result tagged `tag`; what the message said about it.
        func lend(_ storage: SharedStorage, tag: UInt64) throws -> AttachmentInfo {
            lenderWriter.send(.result(requestID: tag, Envelope(payload: ByteBuffer(), attachments: [storage])))
            return try #require(try sent()?.attachments.first)
        }

        /// The next result the lender wrote, skipping other messages.
        func sent() throws -> RunResult? {
            while let message = try next() {
                if case .result(let result) = message { return result }
            }
            return nil
        }

        /// The next message the lender wrote.
        func next() throws -> WireMessage? {
            lenderChannel.embeddedEventLoop.run()
            guard var frame = try lenderChannel.readOutbound(as: ByteBuffer.self) else { return nil }
            let length = frame.readInteger(as: UInt32.self)
            let body = length.flatMap { frame.readSlice(length: Int($0)) }
            return try WireMessage.parse(frameBody: try #require(body, "a whole frame"))
        }
    }

    @Test func aSlotTravelsByNameOnceALoanThatBroughtItCameBack() async throws {
        let connection = try Connection()
        let pool = try SlotPool(slotByteCount: 64, slotCount: 1)
        var slot: SharedBuffer? = try await pool.acquire()
        slot!.withUnsafeMutableBytes { $0.storeBytes(of: 1, as: Int.self) }

        // Until a loan comes back, every loan brings the descriptor.
        let first = try connection.lend(slot!.storage, tag: 1)
        let again = try connection.lend(slot!.storage, tag: 2)
        #expect(first.name != 0 && !first.isKept)
        #expect(again.name == first.name && !again.isKept)
        var received: [SharedStorage]? = try connection.receiver.receive([first], tag: 1)
        let address = received![0].segment.payload
        #expect(received![0].segment.payload.load(as: Int.self) == 1)
        #expect(try connection.receiver.receive([again], tag: 2)[0].segment.payload == address, "the same memory kept")

        // Both loans come back: the slot is free, and the receiver is known to keep it.
        slot = nil
        received = nil
        connection.lender.peerReleased([first.releaseToken, again.releaseToken])
        var reused = try #require(pool.tryAcquire(), "the slot came back")
        reused.withUnsafeMutableBytes { $0.storeBytes(of: 2, as: Int.self) }
        let named = try connection.lend(reused.storage, tag: 3)
        #expect(named.name == first.name && named.isKept, "lent by name, without its descriptor")
        let third = try connection.receiver.receive([named], tag: 3)
        #expect(third[0].segment.payload == address)
        #expect(third[0].segment.payload.load(as: Int.self) == 2, "the new contents, through the kept mapping")
    }

    @Test func aGonePoolIsForgottenAndAClosedConnectionKeepsNothing() async throws {
        let connection = try Connection()
        var pool: SlotPool? = try SlotPool(slotByteCount: 64, slotCount: 2)
        let info = try connection.lend(try #require(pool!.tryAcquire()).storage, tag: 1)
        _ = try connection.receiver.receive([info], tag: 1)
        #expect(connection.receiver.keptNames == [info.name])

        // The loan comes back and the pool goes: the lender tells the receiver to forget.
        connection.lender.peerReleased([info.releaseToken])
        pool = nil
        guard case .forget(let names) = try connection.next() else {
            Issue.record("no forget message after the pool went")
            return
        }
        #expect(names == [info.name])
        connection.receiver.peerForgot(names)
        #expect(connection.receiver.keptNames.isEmpty)

        let other = try SlotPool(slotByteCount: 64, slotCount: 1)
        let next = try connection.lend(try #require(other.tryAcquire()).storage, tag: 2)
        #expect(next.name != info.name, "names are never reused")
        _ = try connection.receiver.receive([next], tag: 2)
        connection.receiver.connectionClosed()
        #expect(connection.receiver.keptNames.isEmpty)
    }

    @Test func slotsBeyondTheLimitAreLentWithTheirDescriptorEveryTime() throws {
        var names = LentSlotNames(maximumNames: 2)
        let slots = (0..<3).map { SlotIdentity(pool: 1, index: $0) }
        #expect(names.lend(slots[0], token: 1) == (1, false, true))
        #expect(names.lend(slots[1], token: 2) == (2, false, false))
        #expect(names.lend(slots[2], token: 3) == (0, false, false), "no name beyond the limit")
        names.returned([1, 2, 3])
        #expect(names.lend(slots[0], token: 4) == (1, true, false))
        #expect(names.lend(slots[2], token: 5) == (0, false, false))
        #expect(names.poolGone(1) == [1, 2])
        #expect(names.lend(slots[2], token: 6) == (3, false, true), "room again once the pool's names are gone")
    }

    @Test func namingMemoryTheReceiverDoesNotKeepIsAnError() throws {
        let connection = try Connection()
        #expect {
            try connection.receiver.receive([AttachmentInfo(byteCount: 8, releaseToken: 1, name: 5, isKept: true)], tag: 1)
        } throws: { "\($0)".contains("shared memory 5 that the peer never sent") }

        let streamed = StreamedAttachments(maxAttachmentLength: 1 << 20)
        #expect {
            try streamed.receive([AttachmentInfo(byteCount: 8, releaseToken: 1, name: 5, isKept: true)], tag: 1)
        } throws: { "\($0)".contains("streams every attachment") }
    }

    @Test func keptMemoryMustHoldWhatALoanAnnounces() async throws {
        let connection = try Connection()
        let pool = try SlotPool(slotByteCount: 64, slotCount: 1)
        let info = try connection.lend(try await pool.acquire().storage, tag: 1)
        _ = try connection.receiver.receive([info], tag: 1)
        var oversized = info
        oversized.isKept = true
        oversized.byteCount = 1 << 20
        #expect {
            try connection.receiver.receive([oversized], tag: 2)
        } throws: { "\($0)".contains("fewer than the 1048576 announced") }
    }
}
