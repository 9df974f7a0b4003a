/// The Arrow data types Kapsel reads and writes.
public enum ArrowType: String, Sendable, Codable, CaseIterable {
    /// Signed 8-bit integers.
    case int8
    /// Signed 16-bit integers.
    case int16
    /// Signed 32-bit integers.
    case int32
    /// Signed 64-bit integers.
    case int64
    /// Unsigned 8-bit integers.
    case uint8
    /// Unsigned 16-bit integers.
    case uint16
    /// Unsigned 32-bit integers.
    case uint32
    /// Unsigned 64-bit integers.
    case uint64
    /// IEEE 754 single precision.
    case float32
    /// IEEE 754 double precision.
    case float64
    /// Bit-packed booleans.
    case bool
    /// UTF-8 strings with 32-bit offsets.
    case utf8

    /// The format string of the C Data Interface.
    public var format: String {
        switch self {
        case .int8: "c"
        case .int16: "s"
        case .int32: "i"
        case .int64: "l"
        case .uint8: "C"
        case .uint16: "S"
        case .uint32: "I"
        case .uint64: "L"
        case .float32: "f"
        case .float64: "g"
        case .bool: "b"
        case .utf8: "u"
        }
    }

    /// The type a format string names, if Kapsel supports it.
    public init?(format: String) {
        guard let type = Self.allCases.first(where: { $0.format == format }) else { return nil }
        self = type
    }

    /// Bytes per value of a fixed-width type; nil for `bool` and `utf8`.
    public var byteWidth: Int? {
        switch self {
        case .int8, .uint8: 1
        case .int16, .uint16: 2
        case .int32, .uint32, .float32: 4
        case .int64, .uint64, .float64: 8
        case .bool, .utf8: nil
        }
    }

    /// Buffers of an array of this type: validity, then values (or offsets and data).
    var bufferCount: Int { self == .utf8 ? 3 : 2 }
}

/// Swift types stored as fixed-width Arrow values.
public protocol ArrowPrimitive: BitwiseCopyable, Sendable {
    /// The Arrow type of the values.
    static var arrowType: ArrowType { get }
}

extension Int8: ArrowPrimitive { public static var arrowType: ArrowType { .int8 } }
extension Int16: ArrowPrimitive { public static var arrowType: ArrowType { .int16 } }
extension Int32: ArrowPrimitive { public static var arrowType: ArrowType { .int32 } }
extension Int64: ArrowPrimitive { public static var arrowType: ArrowType { .int64 } }
extension Int: ArrowPrimitive { public static var arrowType: ArrowType { .int64 } }
extension UInt8: ArrowPrimitive { public static var arrowType: ArrowType { .uint8 } }
extension UInt16: ArrowPrimitive { public static var arrowType: ArrowType { .uint16 } }
extension UInt32: ArrowPrimitive { public static var arrowType: ArrowType { .uint32 } }
extension UInt64: ArrowPrimitive { public static var arrowType: ArrowType { .uint64 } }
extension Float: ArrowPrimitive { public static var arrowType: ArrowType { .float32 } }
extension Double: ArrowPrimitive { public static var arrowType: ArrowType { .float64 } }

/// A column or table that is not what an operation needs.
public struct ArrowError: Error, CustomStringConvertible, Sendable {
    /// What is wrong.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
