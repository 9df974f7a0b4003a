import Foundation
import NIOCore
import Testing
@testable import KapselWire

@Suite("Compact binary coder")
struct CompactCoderTests {
    struct Point: Codable, Equatable { var x: Int; var y: Int }

    enum Shape: Codable, Equatable {
        case circle(radius: Double)
        case polygon([Point])
        case nothing
    }

    struct Everything: Codable, Equatable {
        var int8: Int8 = .min, int16: Int16 = .max, int32: Int32 = -7, int64: Int64 = .min
        var uint8: UInt8 = .max, uint16: UInt16 = 9, uint32: UInt32 = .max, uint64: UInt64 = .max
        var int: Int = -1, uint: UInt = 12
        var float: Float = -1.5, double: Double = .pi, nan: Double = .nan
        var bool = true, text = "grüße 🌍", empty = ""
        var optionalSome: Int? = 4, optionalNone: String? = nil
        var nestedOptional: [Int?] = [1, nil, 3]
        var shapes: [Shape] = [.circle(radius: 2), .polygon([Point(x: 1, y: 2)]), .nothing]
        var byName: [String: Point] = ["a": Point(x: 0, y: 0)]
        var byNumber: [Int: [String]] = [3: ["x"], -4: []]
        var doubles: [Double] = [1, 2.5, -.infinity]
        var floats: [Float] = [0.5]
        var int32s: [Int32] = [.min, 0, .max]
        var bytes: [UInt8] = [0, 1, 255]
        var data = Data([9, 8, 7])
        var matrix: [[Double]] = [[1, 2], [3]]

        static func == (lhs: Everything, rhs: Everything) -> Bool {
            // NaN never equals itself: compare bit patterns for it, the rest as usual.
            var left = lhs, right = rhs
            guard left.nan.bitPattern == right.nan.bitPattern else { return false }
            left.nan = 0
            right.nan = 0
            return left.int8 == right.int8 && left.int16 == right.int16 && left.int32 == right.int32 && left.int64 == right.int64
                && left.uint8 == right.uint8 && left.uint16 == right.uint16 && left.uint32 == right.uint32 && left.uint64 == right.uint64
                && left.int == right.int && left.uint == right.uint && left.float == right.float && left.double == right.double
                && left.bool == right.bool && left.text == right.text && left.empty == right.empty
                && left.optionalSome == right.optionalSome && left.optionalNone == right.optionalNone
                && left.nestedOptional == right.nestedOptional && left.shapes == right.shapes && left.byName == right.byName
                && left.byNumber == right.byNumber && left.doubles == right.doubles && left.floats == right.floats
                && left.int32s == right.int32s && left.bytes == right.bytes && left.data == right.data && left.matrix == right.matrix
        }
    }

    func roundTrip<T: Codable>(_ value: T) throws -> T {
        let bytes = try CompactEncoder().encode(value)
        return try CompactDecoder().decode(T.self, from: bytes)
    }

    @Test func roundTripsEveryShape() throws {
        let value = Everything()
        #expect(try roundTrip(value) == value)
    }

    @Test func roundTripsTopLevelPrimitivesAndCollections() throws {
        #expect(try roundTrip(42) == 42)
        #expect(try roundTrip("x") == "x")
        #expect(try roundTrip([1, 2, 3]) == [1, 2, 3])
        #expect(try roundTrip(Optional<Int>.none) == nil)
        #expect(try roundTrip(["k": 1.5]) == ["k": 1.5])
        #expect(try roundTrip([Double]()) == [])
    }

    class Base: Codable {
        var name: String
        init(name: String) { self.name = name }
    }

    final class Derived: Base, @unchecked Sendable {
        // @unchecked: a test-only value never shared between tasks.
        var extra: Int
        init(name: String, extra: Int) {
            self.extra = extra
            super.init(name: name)
        }
        enum CodingKeys: String, CodingKey { case extra }
        required init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            extra = try container.decode(Int.self, forKey: .extra)
            try super.init(from: container.superDecoder())
        }
        override func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(extra, forKey: .extra)
            try super.encode(to: container.superEncoder())
        }
    }

    @Test func supportsSuperEncoders() throws {
        let decoded = try roundTrip(Derived(name: "n", extra: 5))
        #expect(decoded.name == "n")
        #expect(decoded.extra == 5)
    }

    @Test func storesNumericArraysPacked() throws {
        let doubles = (0..<1000).map(Double.init)
        let bytes = try CompactEncoder().encode(doubles)
        // tag + kind + varint count (2 bytes) + 8 bytes per element: no per-element tags.
        #expect(bytes.readableBytes == 1 + 1 + 2 + 8000)
        let node = try CompactReader.read(bytes, limits: CompactLimits())
        guard case .packed(.float64, let raw) = node else {
            Issue.record("expected a packed array, got \(node.kindName)")
            return
        }
        #expect(raw.count == 8000)
    }

    @Test func decodesPackedArraysElementByElementWhenAskedForAnotherType() throws {
        // Encoded as packed Int32, decoded as [Int]: read element by element, values kept.
        let bytes = try CompactEncoder().encode([Int32(-5), 6])
        #expect(try CompactDecoder().decode([Int].self, from: bytes) == [-5, 6])
    }

    @Test func keyedContainersToleratesReorderedAndMissingOptionalKeys() throws {
        struct Old: Codable { var b: Int; var a: Int }
        struct New: Codable, Equatable { var a: Int; var b: Int; var c: String? }
        let bytes = try CompactEncoder().encode(Old(b: 2, a: 1))
        #expect(try CompactDecoder().decode(New.self, from: bytes) == New(a: 1, b: 2, c: nil))
    }

    @Test func reportsTypeMismatchesWithTheCodingPath() throws {
        struct Wrong: Codable { var x: String; var y: Int }
        let bytes = try CompactEncoder().encode(Point(x: 1, y: 2))
        #expect {
            try CompactDecoder().decode(Wrong.self, from: bytes)
        } throws: { error in
            guard case DecodingError.typeMismatch(_, let context) = error else { return false }
            return context.codingPath.map(\.stringValue) == ["x"]
        }
    }

    @Test func refusesNumbersThatDoNotFit() throws {
        let bytes = try CompactEncoder().encode(300)
        #expect(throws: DecodingError.self) { try CompactDecoder().decode(UInt8.self, from: bytes) }
    }

    @Test func refusesTruncatedInputAtEveryLength() throws {
        let bytes = Array(try CompactEncoder().encode(Everything()).readableBytesView)
        for length in 0..<bytes.count {
            #expect(throws: CompactFormatError.self) {
                try CompactDecoder().decode(Everything.self, from: Array(bytes[0..<length]))
            }
        }
    }

    @Test func refusesTrailingBytes() throws {
        var bytes = try CompactEncoder().encode(1)
        bytes.writeInteger(UInt8(0))
        #expect(throws: CompactFormatError.self) { try CompactDecoder().decode(Int.self, from: bytes) }
    }

    @Test func refusesCountsLargerThanTheInput() throws {
        // An array claiming 2^40 elements in a 7-byte input: refused before any allocation.
        var bytes = ByteBuffer()
        bytes.writeInteger(CompactTag.array.rawValue)
        CompactWriter.writeVarint(1 << 40, into: &bytes)
        #expect {
            try CompactDecoder().decode([Int].self, from: bytes)
        } throws: { error in
            String(describing: error).contains("claims 1099511627776 elements")
        }
        var packed = ByteBuffer()
        packed.writeInteger(CompactTag.packed.rawValue)
        packed.writeInteger(PackedKind.float64.rawValue)
        CompactWriter.writeVarint(.max, into: &packed)
        #expect(throws: CompactFormatError.self) { try CompactDecoder().decode([Double].self, from: packed) }
    }

    @Test func refusesOverlongVarintsUnknownTagsAndBadUTF8() throws {
        let overlong: [UInt8] = [CompactTag.uint.rawValue] + Array(repeating: 0xff, count: 10) + [0x01]
        #expect(throws: CompactFormatError.self) { try CompactDecoder().decode(UInt64.self, from: overlong) }
        #expect(throws: CompactFormatError.self) { try CompactDecoder().decode(Int.self, from: [0x7f]) }
        let badUTF8: [UInt8] = [CompactTag.string.rawValue, 2, 0xc3, 0x28]
        #expect(throws: CompactFormatError.self) { try CompactDecoder().decode(String.self, from: badUTF8) }
    }

    @Test func refusesNestingDeeperThanTheLimit() throws {
        let deep: [UInt8] = Array(repeating: [CompactTag.array.rawValue, 1], count: 300).flatMap { $0 } + [CompactTag.null.rawValue]
        #expect {
            try CompactDecoder().decode([[Int]].self, from: deep)
        } throws: { error in
            String(describing: error).contains("nested deeper than 256")
        }
    }

    @Test func survivesRandomBytes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<64, using: &generator)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Any outcome but a crash is acceptable.
            _ = try? CompactDecoder().decode(Everything.self, from: bytes)
            _ = try? CompactDecoder().decode([String: [Double]].self, from: bytes)
        }
    }
}
