import NIOCore

/// Bounds the compact reader enforces on untrusted bytes.
public struct CompactLimits: Sendable, Hashable {
    /// The deepest nesting of containers accepted.
    public var maxDepth: Int

    /// Creates limits; the default depth (256) is far beyond what real values use.
    public init(maxDepth: Int = 256) {
        self.maxDepth = maxDepth
    }
}

/// Reads bytes written by `CompactWriter` back into a `CompactValue` tree.
///
/// Every count and length read is checked against the bytes that remain before
/// anything is allocated, so a corrupt or hostile length can never make the reader
/// allocate more than the input's own size.
struct CompactReader {
    private var buffer: ByteBuffer
    private let limits: CompactLimits

    init(_ buffer: ByteBuffer, limits: CompactLimits) {
        self.buffer = buffer
        self.limits = limits
    }

    /// Reads exactly one value and requires that nothing follows it.
    static func read(_ buffer: ByteBuffer, limits: CompactLimits) throws(CompactFormatError) -> CompactValue {
        var reader = CompactReader(buffer, limits: limits)
        let value = try reader.readValue(depth: 0)
        guard reader.buffer.readableBytes == 0 else {
            throw CompactFormatError("\(reader.buffer.readableBytes) unexpected bytes after the value")
        }
        return value
    }

    private mutating func readValue(depth: Int) throws(CompactFormatError) -> CompactValue {
        guard depth <= limits.maxDepth else {
            throw CompactFormatError("containers nested deeper than \(limits.maxDepth)")
        }
        guard let rawTag = buffer.readInteger(as: UInt8.self) else { throw CompactFormatError("input ends before a value") }
        guard let tag = CompactTag(rawValue: rawTag) else { throw CompactFormatError("unknown type tag \(rawTag)") }
        switch tag {
        case .null: return .null
        case .false: return .bool(false)
        case .true: return .bool(true)
        case .int:
            let zigzag = try readVarint()
            return .int(Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1))
        case .uint:
            return .uint(try readVarint())
        case .float32:
            guard let bits = buffer.readInteger(endianness: .little, as: UInt32.self) else {
                throw CompactFormatError("input ends inside a float")
            }
            return .float(Float(bitPattern: bits))
        case .float64:
            guard let bits = buffer.readInteger(endianness: .little, as: UInt64.self) else {
                throw CompactFormatError("input ends inside a double")
            }
            return .double(Double(bitPattern: bits))
        case .string:
            return .string(try readString())
        case .bytes:
            let count = try readCount(elementWidth: 1, what: "byte string")
            return .bytes(buffer.readBytes(length: count)!)
        case .packed:
            guard let rawKind = buffer.readInteger(as: UInt8.self), let kind = PackedKind(rawValue: rawKind) else {
                throw CompactFormatError("unknown packed element kind")
            }
            let count = try readCount(elementWidth: kind.width, what: "packed array")
            return .packed(kind, buffer.readBytes(length: count * kind.width)!)
        case .external:
            guard let rawKind = buffer.readInteger(as: UInt8.self), let kind = PackedKind(rawValue: rawKind) else {
                throw CompactFormatError("unknown attached element kind")
            }
            let count = try readVarint()
            let attachment = try readVarint()
            guard count <= UInt64(Int.max) / UInt64(kind.width), attachment <= UInt64(UInt16.max) else {
                throw CompactFormatError("attachment reference out of range")
            }
            return .external(kind, count: Int(count), attachment: Int(attachment))
        case .array:
            let count = try readCount(elementWidth: 1, what: "array")
            var elements: [CompactValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try readValue(depth: depth + 1)) }
            return .array(elements)
        case .map:
            let count = try readCount(elementWidth: 2, what: "keyed container")
            var entries: [(key: String, value: CompactValue)] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let key = try readString()
                entries.append((key, try readValue(depth: depth + 1)))
            }
            return .map(entries)
        }
    }

    private mutating func readString() throws(CompactFormatError) -> String {
        let count = try readCount(elementWidth: 1, what: "string")
        guard let text = buffer.readValidUTF8(length: count) else { throw CompactFormatError("invalid UTF-8 in a string") }
        return text
    }

    /// Reads a count and checks that `count * elementWidth` bytes can still follow.
    private mutating func readCount(elementWidth: Int, what: String) throws(CompactFormatError) -> Int {
        let count = try readVarint()
        let available = UInt64(buffer.readableBytes)
        guard count <= available / UInt64(elementWidth) else {
            throw CompactFormatError("\(what) claims \(count) elements but only \(available) bytes remain")
        }
        return Int(count)
    }

    private mutating func readVarint() throws(CompactFormatError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard let byte = buffer.readInteger(as: UInt8.self) else { throw CompactFormatError("input ends inside an integer") }
            if shift == 63 && byte > 1 { throw CompactFormatError("integer does not fit in 64 bits") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw CompactFormatError("integer does not fit in 64 bits") }
        }
    }
}

/// Bytes that are not a well-formed compact value.
public struct CompactFormatError: Error, CustomStringConvertible, Sendable {
    /// What is wrong with the bytes.
    public let description: String

    init(_ description: String) {
        self.description = "malformed compact data: \(description)"
    }
}
