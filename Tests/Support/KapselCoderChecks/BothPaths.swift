import KapselSharedMemory
import KapselWire

/// Encodes the wrapped value through its `Codable` conformance, which the compact
/// coder's fast path would otherwise skip.
public struct ThroughCodable<Value: Codable>: Codable {
    public var value: Value
    public init(_ value: Value) { self.value = value }
    public init(from decoder: any Decoder) throws { value = try Value(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

/// What the compact coder's two paths make of one value (a type with a fast path).
public struct BothPaths<Value: Codable> {
    /// The bytes of the fast path, and of the `Codable` conformance: they must be equal.
    public let fastBytes: [UInt8], codableBytes: [UInt8]
    /// The value the fast path reads from the `Codable` bytes.
    public let fastFromCodable: Value
    /// The value the `Codable` conformance reads from the fast path's bytes.
    public let codableFromFast: Value

    /// Encodes `value` both ways (attachments written as shared memory) and reads each
    /// path's bytes back through the other.
    public init(_ value: Value) throws {
        let fastWriter = SharedAttachmentWriter(inlineLimit: 1 << 20)
        let fast = try CompactEncoder().encode(value, attachments: fastWriter)
        let codableWriter = SharedAttachmentWriter(inlineLimit: 1 << 20)
        let codable = try CompactEncoder().encode(ThroughCodable(value), attachments: codableWriter)
        let reader = SharedAttachmentReader(storages: fastWriter.storages)
        fastBytes = Array(fast.readableBytesView)
        codableBytes = Array(codable.readableBytesView)
        fastFromCodable = try CompactDecoder().decode(Value.self, from: codable, attachments: reader)
        codableFromFast = try CompactDecoder().decode(ThroughCodable<Value>.self, from: fast, attachments: reader).value
    }
}
