#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if _endian(big)
#error("The compact format stores packed numbers little-endian; big-endian hosts are not supported.")
#endif

/// Fixed-width numbers that arrays store packed, as raw little-endian bytes.
protocol CompactPackedElement: BitwiseCopyable {
    static var packedKind: PackedKind { get }
}

extension Int8: CompactPackedElement { static var packedKind: PackedKind { .int8 } }
extension Int16: CompactPackedElement { static var packedKind: PackedKind { .int16 } }
extension UInt16: CompactPackedElement { static var packedKind: PackedKind { .uint16 } }
extension Int32: CompactPackedElement { static var packedKind: PackedKind { .int32 } }
extension UInt32: CompactPackedElement { static var packedKind: PackedKind { .uint32 } }
extension Int64: CompactPackedElement { static var packedKind: PackedKind { .int64 } }
extension UInt64: CompactPackedElement { static var packedKind: PackedKind { .uint64 } }
extension Int: CompactPackedElement { static var packedKind: PackedKind { .int64 } }
extension UInt: CompactPackedElement { static var packedKind: PackedKind { .uint64 } }
extension Float: CompactPackedElement { static var packedKind: PackedKind { .float32 } }
extension Double: CompactPackedElement { static var packedKind: PackedKind { .float64 } }

/// Values the coder writes as one node of raw bytes instead of one node per element.
protocol CompactFastPath {
    /// The node that stands for the whole value.
    var compactValue: CompactValue { get }
    /// The value read back from `node`, or nil when the node has another shape.
    static func fromCompact(_ node: CompactValue) -> Self?
}

extension Array: CompactFastPath where Element: CompactPackedElement {
    var compactValue: CompactValue {
        let bytes = self.withUnsafeBytes { [UInt8]($0) }
        return Element.self == UInt8.self ? .bytes(bytes) : .packed(Element.packedKind, bytes)
    }

    static func fromCompact(_ node: CompactValue) -> [Element]? {
        let bytes: [UInt8]
        switch node {
        case .packed(let kind, let raw) where kind == Element.packedKind: bytes = raw
        case .bytes(let raw) where Element.self == UInt8.self: bytes = raw
        default: return nil
        }
        return bytes.withUnsafeBytes { raw in
            let count = raw.count / MemoryLayout<Element>.stride
            return [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
                initialized = count
            }
        }
    }
}

/// `[UInt8]` is stored as a byte string.
extension UInt8: CompactPackedElement { static var packedKind: PackedKind { .uint8 } }

extension Data: CompactFastPath {
    var compactValue: CompactValue { .bytes([UInt8](self)) }

    static func fromCompact(_ node: CompactValue) -> Data? {
        guard case .bytes(let bytes) = node else { return nil }
        return Data(bytes)
    }
}
