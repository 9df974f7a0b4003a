import Foundation
import KapselCoderChecks
import KapselWire
import NIOCore
import Testing
@testable import KapselSharedMemory

@Suite("SharedArray, SharedBuffer, SharedTensor")
struct SharedArrayTests {
    @Test func behavesLikeAnArray() throws {
        var array = try SharedArray<Double>(count: 5)
        #expect(Array(array) == [0, 0, 0, 0, 0])
        array[2] = 7.5
        #expect(array[2] == 7.5)
        #expect(array.count == 5 && array.indices == 0..<5)
        #expect(try SharedArray([1, 2, 3]) == SharedArray([1, 2, 3]))
        #expect(try Array(SharedArray(repeating: Int32(4), count: 3)) == [4, 4, 4])
        let filled = try SharedArray<Int>(count: 4) { buffer in
            for index in buffer.indices { buffer[index] = index * index }
        }
        #expect(Array(filled) == [0, 1, 4, 9])
        #expect(filled.map { $0 + 1 } == [1, 2, 5, 10])
        #expect(filled.reduce(0, +) == 14)
    }

    @Test func copiesOnWriteLikeAnArray() throws {
        let original = try SharedArray([1.0, 2.0, 3.0])
        var copy = original
        #expect(copy.buffer.storage === original.buffer.storage)
        copy[0] = 100
        #expect(original[0] == 1)
        #expect(copy[0] == 100)
        #expect(copy.buffer.storage !== original.buffer.storage)
    }

    @Test func aSentArrayIsFrozenAndWritingCopiesFirst() throws {
        var array = try SharedArray([1.0, 2.0])
        let writer = SharedAttachmentWriter(inlineLimit: 1 << 20)
        _ = try CompactEncoder().encode(array, attachments: writer)
        #expect(array.isReadOnly)
        let sentStorage = writer.storages[0]
        array[0] = 9
        #expect(array.buffer.storage !== sentStorage)
        // The sent memory never changes under its receiver.
        #expect(UnsafeRawPointer(sentStorage.segment.payload).load(as: Double.self) == 1)
        #expect(!array.isReadOnly)
    }

    @Test func crossesTheCoderAsAReferenceNotBytes() throws {
        let array = try SharedArray<Double>(count: 1_000_000) { buffer in
            for index in buffer.indices { buffer[index] = Double(index) }
        }
        let writer = SharedAttachmentWriter(inlineLimit: 1 << 20)
        let bytes = try CompactEncoder().encode(array, attachments: writer)
        #expect(bytes.readableBytes < 100)
        #expect(writer.storages.count == 1)
        let reader = SharedAttachmentReader(storages: writer.storages)
        let decoded = try CompactDecoder().decode(SharedArray<Double>.self, from: bytes, attachments: reader)
        #expect(decoded.count == 1_000_000 && decoded[999_999] == 999_999)
        #expect(decoded.buffer.storage === array.buffer.storage)
    }

    @Test func attachingOneBufferTwiceSendsItOnce() throws {
        struct Pair: Codable { var a: SharedArray<Int>; var b: SharedArray<Int> }
        let shared = try SharedArray([1, 2, 3])
        let writer = SharedAttachmentWriter(inlineLimit: 1 << 20)
        _ = try CompactEncoder().encode(Pair(a: shared, b: shared), attachments: writer)
        #expect(writer.storages.count == 1)
    }

    @Test func otherEncodersGetTheBytes() throws {
        let array = try SharedArray<Int16>([5, -6])
        let json = try JSONEncoder().encode(array)
        let back = try JSONDecoder().decode(SharedArray<Int16>.self, from: json)
        #expect(Array(back) == [5, -6])
        #expect(back.buffer.storage !== array.buffer.storage)
    }

    @Test func refusesAnotherElementType() throws {
        let writer = SharedAttachmentWriter(inlineLimit: 1 << 20)
        let bytes = try CompactEncoder().encode(try SharedArray<Float>([1, 2]), attachments: writer)
        #expect(throws: DecodingError.self) {
            try CompactDecoder().decode(SharedArray<Double>.self, from: bytes, attachments: SharedAttachmentReader(storages: writer.storages))
        }
        #expect(throws: (any Error).self) {
            try CompactDecoder().decode(SharedArray<Float>.self, from: bytes, attachments: nil)
        }
    }

    @Test func largePlainArraysGoToAnAttachmentSmallOnesStayInline() throws {
        let large = (0..<200_000).map(Double.init)
        let writer = SharedAttachmentWriter(inlineLimit: 1 << 20)
        let bytes = try CompactEncoder().encode(large, attachments: writer)
        #expect(writer.storages.count == 1 && bytes.readableBytes < 32)
        let back = try CompactDecoder().decode([Double].self, from: bytes, attachments: SharedAttachmentReader(storages: writer.storages))
        #expect(back == large)

        let small = [1.0, 2.0]
        let smallWriter = SharedAttachmentWriter(inlineLimit: 1 << 20)
        _ = try CompactEncoder().encode(small, attachments: smallWriter)
        #expect(smallWriter.storages.isEmpty)
    }

    @Test func tensorsKeepTheirLayoutAndTransposeWithoutCopying() throws {
        var columnMajor = try SharedTensor<Double>(shape: [3, 4], layout: .columnMajor)
        #expect(columnMajor.strides == [1, 3])
        #expect(columnMajor.layout == .columnMajor)
        for row in 0..<3 { for column in 0..<4 { columnMajor[row, column] = Double(row * 10 + column) } }
        columnMajor.withUnsafeBufferPointer { memory in
            #expect(Array(memory.prefix(4)) == [0, 10, 20, 1])
        }
        let transposed = columnMajor.transposed()
        #expect(transposed.shape == [4, 3] && transposed.layout == .rowMajor)
        #expect(transposed[3, 2] == 23)
        #expect(transposed.buffer.storage === columnMajor.buffer.storage)

        let rowMajor = try SharedTensor<Float>(shape: [2, 3, 4])
        #expect(rowMajor.strides == [12, 4, 1] && rowMajor.layout == .rowMajor)
        let viewed = try SharedTensor(try SharedArray<Int>(Array(0..<6)), shape: [2, 3], layout: .columnMajor)
        #expect(viewed[1, 2] == 5 && viewed[1, 0] == 1)
    }

    @Test func refusesTensorViewsOutsideTheirBuffer() throws {
        let buffer = try SharedBuffer(byteCount: 8 * 6)
        #expect(throws: SharedMemoryError.self) { try SharedTensor<Double>(buffer: buffer, shape: [3, 3], strides: [3, 1]) }
        #expect(throws: SharedMemoryError.self) { try SharedTensor<Double>(buffer: buffer, shape: [2], strides: [1, 1]) }
        #expect(throws: SharedMemoryError.self) { try SharedArray<Double>(buffer: buffer, count: 7) }
        _ = try SharedTensor<Double>(buffer: buffer, shape: [2, 3], strides: [1, 2])
        // Sizes whose products overflow are refused, not trapped on.
        #expect(throws: SharedMemoryError.self) { try SharedTensor<Double>(buffer: buffer, shape: [Int.max, 2], strides: [Int.max, 1]) }
        #expect(throws: SharedMemoryError.self) { try SharedArray<Double>(buffer: buffer, count: Int.max) }
    }

    /// The compact coder's fast path for shared types gives the same bytes their
    /// `Codable` conformances give, and each path reads what the other wrote.
    @Test func theFastPathAndCodableWriteTheSameBytes() throws {
        let array = try SharedArray<Double>([1, 2, 3, 4, 5, 6])
        let tensor = try SharedTensor(array, shape: [2, 3], layout: .columnMajor)

        func roundTrip<Value: Codable>(_ value: Value, _ check: (Value) -> Bool) throws {
            let paths = try BothPaths(value)
            #expect(paths.fastBytes == paths.codableBytes)
            #expect(check(paths.fastFromCodable))
            #expect(check(paths.codableFromFast))
        }
        try roundTrip(array) { Array($0) == [1, 2, 3, 4, 5, 6] }
        try roundTrip(array.buffer) { $0.count == 48 && $0.storage === array.buffer.storage }
        try roundTrip(tensor) { $0.shape == [2, 3] && $0.strides == [1, 2] && $0[1, 2] == 6 }
    }

    /// A key that a peer repeats reads the same on the fast path as through `Codable`
    /// (the last one wins in both).
    @Test func aRepeatedKeyReadsTheSameOnBothPaths() throws {
        struct Repeated: Encodable {
            enum Key: String, CodingKey { case attachment, offset, count }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Key.self)
                try container.encode(0, forKey: .attachment)
                try container.encode(0, forKey: .offset)
                try container.encode(8, forKey: .count)
                try container.encode(16, forKey: .offset)
            }
        }
        struct ThroughCodable: Decodable {
            var buffer: SharedBuffer
            init(from decoder: any Decoder) throws { buffer = try SharedBuffer(from: decoder) }
        }
        let writer = SharedAttachmentWriter(inlineLimit: 1 << 20)
        _ = try writer.attach(try SharedBuffer(byteCount: 64))
        let bytes = try CompactEncoder().encode(Repeated(), attachments: writer)
        let reader = SharedAttachmentReader(storages: writer.storages)
        #expect(try CompactDecoder().decode(SharedBuffer.self, from: bytes, attachments: reader).offset == 16)
        #expect(try CompactDecoder().decode(ThroughCodable.self, from: bytes, attachments: reader).buffer.offset == 16)
    }

    /// A peer's message that describes a shared value beyond its memory is an error
    /// (with the full decoding error, from the `Codable` path), never a crash.
    @Test func refusesSharedValuesBeyondTheirAttachment() throws {
        struct FakeArray: Codable { var buffer: SharedBuffer; var count: Int; var stride: Int }
        struct FakeTensor: Codable { var buffer: SharedBuffer; var shape: [Int]; var strides: [Int]; var stride: Int }
        struct FakeBuffer: Codable { var attachment: Int; var offset: Int; var count: Int }
        let buffer = try SharedBuffer(byteCount: 64)
        let writer = SharedAttachmentWriter(inlineLimit: 1 << 20)
        let tooLong = try CompactEncoder().encode(FakeArray(buffer: buffer, count: Int.max, stride: 8), attachments: writer)
        let overflowing = try CompactEncoder().encode(FakeTensor(buffer: buffer, shape: [Int.max, 3], strides: [Int.max, 1], stride: 8), attachments: writer)
        let outside = try CompactEncoder().encode(FakeBuffer(attachment: 0, offset: 60, count: 8), attachments: writer)
        let missing = try CompactEncoder().encode(FakeBuffer(attachment: 3, offset: 0, count: 8), attachments: writer)
        let reader = SharedAttachmentReader(storages: writer.storages)
        #expect(throws: (any Error).self) { try CompactDecoder().decode(SharedArray<Double>.self, from: tooLong, attachments: reader) }
        #expect(throws: (any Error).self) { try CompactDecoder().decode(SharedTensor<Double>.self, from: overflowing, attachments: reader) }
        #expect(throws: DecodingError.self) { try CompactDecoder().decode(SharedBuffer.self, from: outside, attachments: reader) }
        #expect(throws: (any Error).self) { try CompactDecoder().decode(SharedBuffer.self, from: missing, attachments: reader) }
    }
}
