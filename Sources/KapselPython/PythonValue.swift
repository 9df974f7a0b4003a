import Kapsel

/// A value crossing between Swift and Python: plain data converts (`int` within 64 bits,
/// finite `float`, `str`, `bool`, `None`, `list` and `tuple`, `dict` with `str` keys —
/// those exact types, not subclasses); anything else stays in the daemon's Python and
/// crosses as a `PythonObject` handle.
///
/// Literals work: `try await python.call("round", 2.675, 2)`.
public enum PythonValue: Codable, Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([PythonValue])
    case dict([String: PythonValue])
    /// A numpy array in shared memory.
    case array(PythonArray)
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
