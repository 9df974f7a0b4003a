import Kapsel
import KapselArrow

/// A value crossing between Swift and Python: plain data converts (`int` within 64 bits,
/// finite `float`, `str`, `bool`, `None`, `list` and `tuple`, `dict` with `str` keys —
/// those exact types, not subclasses); anything else stays in the daemon's Python and
/// crosses as a `PythonObject` handle.
///
/// Literals work: `try await python.call("round", 2.675, 2)`.
public enum PythonValue: Codable, Sendable, Equatable {
    /// `None`.
    case none
    /// A `bool`.
    case bool(Bool)
    /// An `int` within 64 bits.
    case int(Int)
    /// A finite `float`.
    case double(Double)
    /// A `str`.
    case string(String)
    /// A `list` or `tuple`.
    case list([PythonValue])
    /// A `dict` with `str` keys.
    case dict([String: PythonValue])
    /// A numpy array in shared memory.
    case array(PythonArray)
    /// A table in shared memory: a pyarrow `RecordBatch` in Python.
    case table(SharedTable)
    /// An object that stays in Python.
    case object(PythonObject)

    /// The value as an `Int`, if it is one.
    public var int: Int? { if case .int(let value) = self { value } else { nil } }
    /// The value as a `Double`, if it is a number.
    public var double: Double? {
        switch self {
        case .double(let value): value
        case .int(let value): Double(value)
        default: nil
        }
    }
    /// The value as a `String`, if it is one.
    public var string: String? { if case .string(let value) = self { value } else { nil } }
    /// The value as a `Bool`, if it is one.
    public var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    /// The elements, if the value is a list.
    public var list: [PythonValue]? { if case .list(let value) = self { value } else { nil } }
    /// The entries, if the value is a dictionary.
    public var dict: [String: PythonValue]? { if case .dict(let value) = self { value } else { nil } }
    /// The array, if the value is a numpy array of numbers.
    public var array: PythonArray? { if case .array(let value) = self { value } else { nil } }
    /// The table, if the value is a pyarrow record batch or table.
    public var table: SharedTable? { if case .table(let value) = self { value } else { nil } }
    /// The handle, if the value stayed in Python.
    public var object: PythonObject? { if case .object(let value) = self { value } else { nil } }
}

extension PythonValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .none }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: PythonValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, PythonValue)...) {
        self = .dict(Dictionary(elements) { _, last in last })
    }
}

extension PythonValue {
    /// Same case and contents; tables compare column by column (names, types, nulls and values).
    public static func == (left: PythonValue, right: PythonValue) -> Bool {
        switch (left, right) {
        case (.none, .none): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.double(let a), .double(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.list(let a), .list(let b)): a == b
        case (.dict(let a), .dict(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.table(let a), .table(let b)): a.cells == b.cells
        case (.object(let a), .object(let b)): a == b
        default: false
        }
    }
}

extension SharedTable {
    /// Every column's name and type with its values as text (nil for null), for comparing.
    var cells: [[String?]] {
        columns.map { column in
            [column.name, column.arrowType.rawValue] + (0..<column.length).map { row in
                guard !column.isNull(row) else { return nil }
                switch column.arrowType {
                case .int8: return column.value(row, as: Int8.self).map { "\($0)" }
                case .int16: return column.value(row, as: Int16.self).map { "\($0)" }
                case .int32: return column.value(row, as: Int32.self).map { "\($0)" }
                case .int64: return column.value(row, as: Int64.self).map { "\($0)" }
                case .uint8: return column.value(row, as: UInt8.self).map { "\($0)" }
                case .uint16: return column.value(row, as: UInt16.self).map { "\($0)" }
                case .uint32: return column.value(row, as: UInt32.self).map { "\($0)" }
                case .uint64: return column.value(row, as: UInt64.self).map { "\($0)" }
                case .float32: return column.value(row, as: Float.self).map { "\($0)" }
                case .float64: return column.value(row, as: Double.self).map { "\($0)" }
                case .bool: return column.bool(row).map { "\($0)" }
                case .utf8: return column.string(row)
                }
            }
        }
    }
}
