#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if _endian(big)
#error("The compact format stores packed numbers little-endian; big-endian hosts are not supported.")
#endif

/// Fixed-width numbers that arrays store packed, as raw little-endian bytes.
package protocol CompactPackedElement: BitwiseCopyable {
    static var packedKind: PackedKind { get }
}

extension Int8: CompactPackedElement { package static var packedKind: PackedKind { .int8 } }
extension Int16: CompactPackedElement { package static var packedKind: PackedKind { .int16 } }
extension UInt16: CompactPackedElement { package static var packedKind: PackedKind { .uint16 } }
extension Int32: CompactPackedElement { package static var packedKind: PackedKind { .int32 } }
extension UInt32: CompactPackedElement { package static var packedKind: PackedKind { .uint32 } }
extension Int64: CompactPackedElement { package static var packedKind: PackedKind { .int64 } }
extension UInt64: CompactPackedElement { package static var packedKind: PackedKind { .uint64 } }
extension Int: CompactPackedElement { package static var packedKind: PackedKind { .int64 } }
extension UInt: CompactPackedElement { package static var packedKind: PackedKind { .uint64 } }
extension Float: CompactPackedElement { package static var packedKind: PackedKind { .float32 } }
extension Double: CompactPackedElement { package static var packedKind: PackedKind { .float64 } }

/// Packs raw bytes as `kind`: inline, or as an attachment when large enough.
private func packedNode(_ raw: UnsafeRawBufferPointer, kind: PackedKind, attachments: (any CompactAttachmentWriter)?) throws -> CompactValue {
    if let attachments, raw.count >= attachments.inlineLimit {
        let index = try attachments.attach(copying: raw)
        return .external(kind, count: raw.count / kind.width, attachment: index)
    }
    let bytes = [UInt8](raw)
    return kind == .uint8 ? .bytes(bytes) : .packed(kind, bytes)
}

/// Calls `body` with the raw bytes of a packed node of `kind` (inline or attached), or
/// returns nil when the node has another shape.
func withPackedBytes<R>(
    of node: CompactValue, kind: PackedKind, attachments: (any CompactAttachmentReader)?, _ body: (UnsafeRawBufferPointer) throws -> R
) throws -> R? {
    switch node {
    case .packed(let nodeKind, let bytes) where nodeKind == kind:
        return try bytes.withUnsafeBytes(body)
    case .bytes(let bytes) where kind == .uint8:
        return try bytes.withUnsafeBytes(body)
    case .external(let nodeKind, let count, let index) where nodeKind == kind:
        guard let attachments else {
            throw AttachmentReferenceError("the value refers to attachment \(index), but the message has no attachments")
        }
        return try attachments.withAttachmentBytes(index) { raw in
            guard raw.count >= count * kind.width else {
                throw AttachmentReferenceError("attachment \(index) holds \(raw.count) bytes, fewer than \(count) elements of \(kind)")
            }
            return try body(UnsafeRawBufferPointer(rebasing: raw[0..<count * kind.width]))
        }
    default:
        return nil
    }
}

extension Array: CompactFastPath where Element: CompactPackedElement {
    package func compactValue(in coder: CompactNodeEncoding) throws -> CompactValue? {
        try withUnsafeBytes { try packedNode($0, kind: Element.packedKind, attachments: coder.attachments) }
    }

    package static func fromCompact(_ node: CompactValue, in coder: CompactNodeDecoding) throws -> [Element]? {
        try withPackedBytes(of: node, kind: Element.packedKind, attachments: coder.attachments) { raw in
            let count = raw.count / MemoryLayout<Element>.stride
            return [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
                initialized = count
            }
        }
    }
}

/// `[UInt8]` is stored as a byte string.
extension UInt8: CompactPackedElement { package static var packedKind: PackedKind { .uint8 } }

extension Data: CompactFastPath {
    package func compactValue(in coder: CompactNodeEncoding) throws -> CompactValue? {
        try withUnsafeBytes { try packedNode($0, kind: .uint8, attachments: coder.attachments) }
    }

    package static func fromCompact(_ node: CompactValue, in coder: CompactNodeDecoding) throws -> Data? {
        try withPackedBytes(of: node, kind: .uint8, attachments: coder.attachments) { Data($0) }
    }
}
