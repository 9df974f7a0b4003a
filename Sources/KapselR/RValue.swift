import Kapsel
import KapselArrow

/// A value crossing between Swift and R.
///
/// Plain data converts both ways: `NULL`; logical, integer, double and character
/// vectors (`nil` is `NA`) with their names; factors; lists, nested, with names. Numbers
/// in bulk cross through shared memory: a `SharedTensor` reaches R as a numeric vector,
/// matrix or array without a copy, and a numeric vector with dimensions (or a long one)
/// R returns arrives as a `SharedTensor`, copied once. A `SharedTable` reaches R as a
/// `data.frame` and a `data.frame` comes back as one. Anything else stays in the daemon's
/// R behind an `RObject` handle.
///
/// Literals work: `try await r.call("round", 2.675, 2)`; so does `.call("poisson")` (a
/// value made in R by a call), and `RFormula("y ~ x")` is a formula.
public indirect enum RValue: Codable, Sendable {
    /// `NULL`.
    case null
    /// A logical vector.
    case logical([Bool?], names: [String]? = nil)
    /// An integer vector.
    case integer([Int32?], names: [String]? = nil)
    /// A double vector (`nil` is `NA`; other NaNs stay NaN).
    case double([Double?], names: [String]? = nil)
    /// A character vector.
    case character([String?], names: [String]? = nil)
    /// A factor: 1-based codes into `levels`.
    case factor([Int32?], levels: [String])
    /// A list (a generic vector), with names if it has them.
    case list([RValue], names: [String]? = nil)
    /// Doubles in shared memory: a vector (one dimension), a matrix or an array, its
    /// dimensions R's `dim`. R reads and writes column-major: a column-major tensor
    /// crosses as it lies; a row-major one reaches R as its transpose (dimensions
    /// reversed), also without a copy. `NA` is R's NA bit pattern, a NaN.
    case doubles(SharedTensor<Double>)
    /// 32-bit integers in shared memory, as `doubles` (`NA` is `Int32.min`).
    case integers(SharedTensor<Int32>)
    /// A table in shared memory: a `data.frame` in R.
    case table(SharedTable)
    /// An object that stays in R.
    case object(RObject)
    /// To R: a formula, parsed in the global environment (`y ~ x + (1 | g)`).
    case formula(String)
    /// To R: the value of calling `function` (a name, possibly `package::name`) with
    /// `arguments`, made in the daemon (`.call("poisson")` is `poisson()`).
    case call(String, [RArgument])

}

/// An argument of an R call: a value, and its name for a named argument.
public struct RArgument: Codable, Sendable {
    /// The argument's name (`data` in `data = x`); nil for a positional argument.
    public var name: String?
    /// The value.
    public var value: RValue

    /// An argument `name = value` (positional when `name` is nil).
    public init(_ name: String?, _ value: RValue) {
        self.name = name
        self.value = value
    }
}

extension RValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .logical([value]) }
    public init(integerLiteral value: Int32) { self = .integer([value]) }
    public init(floatLiteral value: Double) { self = .double([value]) }
    public init(stringLiteral value: String) { self = .character([value]) }
    public init(arrayLiteral elements: RValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, RValue)...) { self = .list(elements.map(\.1), names: elements.map(\.0)) }
}

extension RValue {
    /// Whether the value is `NULL`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The one number the value holds, if it is a numeric vector of length one.
    public var double: Double? {
        switch self {
        case .double(let values, _) where values.count == 1: values[0]
        case .integer(let values, _) where values.count == 1: values[0].map(Double.init)
        case .doubles(let tensor) where tensor.elementCount == 1: tensor.withUnsafeBufferPointer { $0.first }
        case .integers(let tensor) where tensor.elementCount == 1: tensor.withUnsafeBufferPointer { $0.first.map(Double.init) }
        default: nil
        }
    }

    /// The one integer the value holds, if it is an integer (or whole double) vector of length one.
    public var int: Int? {
        if case .integer(let values, _) = self, values.count == 1 { return values[0].map(Int.init) }
        guard let value = double, value.rounded() == value, abs(value) < 1e18 else { return nil }
        return Int(value)
    }

    /// The one string the value holds, if it is a character vector of length one.
    public var string: String? {
        if case .character(let values, _) = self, values.count == 1 { return values[0] }
        return nil
    }

    /// The one truth value the value holds, if it is a logical vector of length one.
    public var bool: Bool? {
        if case .logical(let values, _) = self, values.count == 1 { return values[0] }
        return nil
    }

    /// The elements of a double (or integer) vector, whichever way it crossed.
    public var doubleValues: [Double?]? {
        switch self {
        case .double(let values, _): values
        case .integer(let values, _): values.map { $0.map(Double.init) }
        case .doubles(let tensor): tensor.withUnsafeBufferPointer { $0.map { RMissing.isNA($0) ? nil : $0 } }
        case .integers(let tensor): tensor.withUnsafeBufferPointer { $0.map { $0 == RMissing.integer ? nil : Double($0) } }
        default: nil
        }
    }

    /// The elements of a character vector, or a factor's labels.
    public var strings: [String?]? {
        switch self {
        case .character(let values, _): values
        case .factor(let codes, let levels): codes.map { $0.flatMap { levels.indices.contains(Int($0) - 1) ? levels[Int($0) - 1] : nil } }
        default: nil
        }
    }

    /// The names of a vector or list.
    public var names: [String]? {
        switch self {
        case .logical(_, let names), .integer(_, let names), .double(_, let names), .character(_, let names), .list(_, let names): names
        default: nil
        }
    }

    /// The elements, if the value is a list.
    public var list: [RValue]? {
        if case .list(let values, _) = self { return values }
        return nil
    }

    /// The element named `name`, if the value is a list with names.
    public subscript(name: String) -> RValue? {
        guard case .list(let values, let names?) = self, let index = names.firstIndex(of: name) else { return nil }
        return values[index]
    }

    /// The table, if the value is a `data.frame`.
    public var table: SharedTable? {
        if case .table(let table) = self { return table }
        return nil
    }

    /// The handle, if the value stayed in R.
    public var object: RObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// The doubles as a tensor in shared memory (the dimensions R gave them, column-major):
    /// as they came when R's value crossed that way, copied into shared memory when it
    /// came as a short vector. Throws if the value is not numeric.
    public func tensor() throws -> SharedTensor<Double> {
        switch self {
        case .doubles(let tensor):
            return tensor
        case .integers(let tensor):
            // Element for element in memory order, so the strides stay as they were.
            var buffer = try SharedBuffer(byteCount: tensor.buffer.count / MemoryLayout<Int32>.stride * MemoryLayout<Double>.stride)
            tensor.withUnsafeBufferPointer { ints in
                buffer.withUnsafeMutableBytes { raw in
                    let out = raw.bindMemory(to: Double.self)
                    for index in ints.indices { out[index] = ints[index] == RMissing.integer ? RMissing.double : Double(ints[index]) }
                }
            }
            return try SharedTensor(buffer: buffer, shape: tensor.shape, strides: tensor.strides)
        case .double, .integer:
            let values = doubleValues ?? []
            return try SharedTensor(try SharedArray(values.map { $0 ?? RMissing.double }), shape: [values.count], layout: .columnMajor)
        default:
            throw RError("NotNumeric", "the value is not numeric: \(kindDescription)")
        }
    }

    /// The text of a character value of length one, or, for an object that stayed in R,
    /// what R prints for it.
    public func string() async throws -> String {
        if let string { return string }
        if case .object(let object) = self { return try await object.printed() }
        if case .character(let values, _) = self { return values.map { $0 ?? "NA" }.joined(separator: "\n") }
        throw RError("NotText", "the value is not text: \(kindDescription)")
    }

    /// What kind of value this is, for error messages.
    var kindDescription: String {
        switch self {
        case .null: "NULL"
        case .logical(let values, _): "a logical vector of \(values.count)"
        case .integer(let values, _): "an integer vector of \(values.count)"
        case .double(let values, _): "a double vector of \(values.count)"
        case .character(let values, _): "a character vector of \(values.count)"
        case .factor(let codes, _): "a factor of \(codes.count)"
        case .list(let values, _): "a list of \(values.count)"
        case .doubles(let tensor): "doubles of shape \(tensor.shape)"
        case .integers(let tensor): "integers of shape \(tensor.shape)"
        case .table(let table): "a data frame of \(table.rowCount) rows"
        case .object: "an R object"
        case .formula(let text): "the formula \(text)"
        case .call(let function, _): "a call of \(function)"
        }
    }
}

/// R's missing values as they lie in memory.
public enum RMissing {
    /// `NA_integer_`.
    public static let integer = Int32.min
    /// `NA_real_`: a NaN whose low word is 1954.
    public static let double = Double(bitPattern: 0x7FF0_0000_0000_07A2)

    /// Whether `value` is R's `NA_real_` (not just any NaN).
    public static func isNA(_ value: Double) -> Bool {
        value.isNaN && value.bitPattern & 0xFFFF_FFFF == 1954
    }
}
