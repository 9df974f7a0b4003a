import NIOCore

/// Writes a `CompactValue` tree as bytes: a tag byte before every value, LEB128
/// variable-length integers for counts and integers (signed ones zig-zag encoded).
enum CompactWriter {
    static func write(_ value: CompactValue, into buffer: inout ByteBuffer) {
        switch value {
        case .null:
            buffer.writeInteger(CompactTag.null.rawValue)
        case .bool(let flag):
            buffer.writeInteger((flag ? CompactTag.true : CompactTag.false).rawValue)
        case .int(let number):
            buffer.writeInteger(CompactTag.int.rawValue)
            writeVarint(UInt64(bitPattern: (number << 1) ^ (number >> 63)), into: &buffer)
        case .uint(let number):
            buffer.writeInteger(CompactTag.uint.rawValue)
            writeVarint(number, into: &buffer)
        case .float(let number):
            buffer.writeInteger(CompactTag.float32.rawValue)
            buffer.writeInteger(number.bitPattern, endianness: .little)
        case .double(let number):
            buffer.writeInteger(CompactTag.float64.rawValue)
            buffer.writeInteger(number.bitPattern, endianness: .little)
        case .string(let text):
            buffer.writeInteger(CompactTag.string.rawValue)
            writeString(text, into: &buffer)
        case .bytes(let bytes):
            buffer.writeInteger(CompactTag.bytes.rawValue)
            writeVarint(UInt64(bytes.count), into: &buffer)
            buffer.writeBytes(bytes)
        case .packed(let kind, let bytes):
            buffer.writeInteger(CompactTag.packed.rawValue)
            buffer.writeInteger(kind.rawValue)
            writeVarint(UInt64(bytes.count / kind.width), into: &buffer)
            buffer.writeBytes(bytes)
        case .external(let kind, let count, let attachment):
            buffer.writeInteger(CompactTag.external.rawValue)
            buffer.writeInteger(kind.rawValue)
            writeVarint(UInt64(count), into: &buffer)
            writeVarint(UInt64(attachment), into: &buffer)
        case .array(let elements):
            buffer.writeInteger(CompactTag.array.rawValue)
            writeVarint(UInt64(elements.count), into: &buffer)
            for element in elements { write(element, into: &buffer) }
        case .map(let entries):
            buffer.writeInteger(CompactTag.map.rawValue)
            writeVarint(UInt64(entries.count), into: &buffer)
            for entry in entries {
                writeString(entry.key, into: &buffer)
                write(entry.value, into: &buffer)
            }
        }
    }

    static func writeString(_ text: String, into buffer: inout ByteBuffer) {
        var text = text
        text.withUTF8 { utf8 in
            writeVarint(UInt64(utf8.count), into: &buffer)
            buffer.writeBytes(utf8)
        }
    }

    static func writeVarint(_ value: UInt64, into buffer: inout ByteBuffer) {
        var rest = value
        while rest >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        buffer.writeInteger(UInt8(rest))
    }
}
