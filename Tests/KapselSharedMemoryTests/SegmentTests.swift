import CKapselShim
import Foundation
import Testing
@testable import KapselSharedMemory

#if canImport(Glibc)
import Glibc
#endif

@Suite("Segments and the descriptor channel")
struct SegmentTests {
    @Test func segmentsAre64ByteAlignedSealedAndNotInDevShm() throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: "/dev/shm")
        let segment = try SharedSegment.allocate(byteCount: 1000)
        #expect(Int(bitPattern: segment.payload) % 64 == 0)
        #expect(kapsel_is_shrink_sealed(segment.descriptor) == 1)
        #expect(ftruncate(segment.descriptor, 10) != 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "/dev/shm") == before)
    }

    @Test func adoptingChecksWhatItIsGiven() throws {
        // A real segment adopts, read-only.
        let segment = try SharedSegment.allocate(byteCount: 64)
        segment.payload.storeBytes(of: 42, as: Int.self)
        let adopted = try SharedSegment.adopt(descriptor: dup(segment.descriptor), minimumByteCount: 64)
        #expect(!adopted.isWritable && adopted.byteCount == 64)
        #expect(UnsafeRawPointer(adopted.payload).load(as: Int.self) == 42)

        // Announced bigger than it is: refused (it would fault when read).
        #expect { try SharedSegment.adopt(descriptor: dup(segment.descriptor), minimumByteCount: 65) } throws: { "\($0)".contains("fewer than the 65") }
        // Not sealed: refused (its owner could shrink it under the mapping).
        let unsealed = kapsel_shared_memory_create("t", 4096)
        #expect { try SharedSegment.adopt(descriptor: unsealed, minimumByteCount: 0) } throws: { "\($0)".contains("not size-sealed") }
        // Sealed but not a Kapsel segment.
        let foreign = kapsel_shared_memory_create("t", 4096)
        _ = kapsel_seal_size(foreign)
        #expect { try SharedSegment.adopt(descriptor: foreign, minimumByteCount: 0) } throws: { "\($0)".contains("bad header") }
        // Not shared memory at all.
        var pipe: [Int32] = [0, 0]
        _ = kapsel_pipe_cloexec(&pipe)
        close(pipe[1])
        #expect { try SharedSegment.adopt(descriptor: pipe[0], minimumByteCount: 0) } throws: { "\($0)".contains("is not shared memory") }
    }

    @Test func descriptorsFindTheirMessageWhateverTheOrder() throws {
        let (sender, other) = try DescriptorChannel.pair()
        let receiver = DescriptorChannel(socket: other)
        let first = try SharedSegment.allocate(byteCount: 8)
        first.payload.storeBytes(of: 1, as: Int.self)
        let second = try SharedSegment.allocate(byteCount: 8)
        second.payload.storeBytes(of: 2, as: Int.self)
        try sender.send(tag: 10, segments: [first])
        try sender.send(tag: 20, segments: [second, first])
        let forTwenty = try receiver.receive(tag: 20, count: 2).map { try SharedSegment.adopt(descriptor: $0, minimumByteCount: 8) }
        let forTen = try receiver.receive(tag: 10, count: 1).map { try SharedSegment.adopt(descriptor: $0, minimumByteCount: 8) }
        #expect(forTwenty.map { UnsafeRawPointer($0.payload).load(as: Int.self) } == [2, 1])
        #expect(forTen.map { UnsafeRawPointer($0.payload).load(as: Int.self) } == [1])
    }

    /// Descriptors go before the message that announces them, so a receiver never waits
    /// for them: missing ones are the peer's fault, reported at once.
    @Test func aMissingOrShortMessageIsAnErrorNotAWait() throws {
        let (sender, other) = try DescriptorChannel.pair()
        let receiver = DescriptorChannel(socket: other)
        #expect { try receiver.receive(tag: 1, count: 1) } throws: { "\($0)".contains("message 1 announced 1 shared memory attachments whose descriptors were not sent before it") }
        try sender.send(tag: 2, segments: [try SharedSegment.allocate(byteCount: 1)])
        #expect { try receiver.receive(tag: 2, count: 3) } throws: { "\($0)".contains("announced 3 attachments but 1 descriptors arrived") }
    }
}
