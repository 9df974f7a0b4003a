/// The value tree of the compact binary format: what an `Encodable` value becomes
/// before it is written, and what bytes become before a `Decodable` value is read.
///
/// Keyed containers keep their keys (so custom `init(from:)` that decode keys
/// conditionally or out of order work), unkeyed containers keep their order, and
/// arrays of fixed-width numbers are stored packed (raw little-endian bytes), never
/// as one node per element.
package enum CompactValue: Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case float(Float)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case packed(PackedKind, [UInt8])
    /// A packed array (or byte string, kind `.uint8`) held in attachment `index`.
    case external(PackedKind, count: Int, attachment: Int)
    case array([CompactValue])
    case map([(key: String, value: CompactValue)])

    package static func == (lhs: CompactValue, rhs: CompactValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.uint(a), .uint(b)): return a == b
        case let (.float(a), .float(b)): return a.bitPattern == b.bitPattern
        case let (.double(a), .double(b)): return a.bitPattern == b.bitPattern
        case let (.string(a), .string(b)): return a == b
        case let (.bytes(a), .bytes(b)): return a == b
        case let (.packed(ka, a), .packed(kb, b)): return ka == kb && a == b
        case let (.external(ka, ca, ia), .external(kb, cb, ib)): return ka == kb && ca == cb && ia == ib
        case let (.array(a), .array(b)): return a == b
        case let (.map(a), .map(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// A short name of the node's kind, for error messages.
    var kindName: String {
        switch self {
        case .null: "nil"
        case .bool: "bool"
        case .int: "signed integer"
        case .uint: "unsigned integer"
        case .float: "float"
        case .double: "double"
        case .string: "string"
        case .bytes: "bytes"
        case .packed(let kind, _): "packed \(kind) array"
        case .external(let kind, _, _): "attached \(kind) array"
        case .array: "array"
        case .map: "keyed container"
        }
    }
}

extension CompactValue {
    /// The value under `key` of a keyed node — the last one when a key repeats, as the
    /// decoder's keyed containers read it — or nil (no such key, or not a keyed node).
    package subscript(key key: String) -> CompactValue? {
        guard case .map(let entries) = self else { return nil }
        return Self.value(forKey: key, in: entries)
    }

    /// The value under `key` among a keyed node's `entries` (the last, when a key repeats).
    static func value(forKey key: String, in entries: [(key: String, value: CompactValue)]) -> CompactValue? {
        entries.last(where: { $0.key == key })?.value
    }

    /// The number of an integer node, if it fits in `I`; nil for a number that does not,
    /// or a node of another kind.
    package func integer<I: FixedWidthInteger>(as type: I.Type) -> I? {
        switch self {
        case .int(let number): I(exactly: number)
        case .uint(let number): I(exactly: number)
        default: nil
        }
    }
}

/// Element kinds of packed numeric arrays.
package enum PackedKind: UInt8, CustomStringConvertible {
    case int8 = 1, uint8, int16, uint16, int32, uint32, int64, uint64, float32, float64

    /// Bytes per element.
    var width: Int {
        switch self {
        case .int8, .uint8: 1
        case .int16, .uint16: 2
        case .int32, .uint32, .float32: 4
        case .int64, .uint64, .float64: 8
        }
    }

    package var description: String {
        switch self {
        case .int8: "Int8"
        case .uint8: "UInt8"
        case .int16: "Int16"
        case .uint16: "UInt16"
        case .int32: "Int32"
        case .uint32: "UInt32"
        case .int64: "Int64"
        case .uint64: "UInt64"
        case .float32: "Float"
        case .float64: "Double"
        }
    }
}

/// Type tags of the compact binary format: one byte before every value.
enum CompactTag: UInt8 {
    case null = 0, `false`, `true`, int, uint, float32, float64, string, bytes, array, map, packed, external
}
