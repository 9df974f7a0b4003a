import Kapsel
import KapselArrow

/// A Swift value that can be an argument of an R call: `RValue` itself, numbers, strings,
/// truth values and arrays of them, shared memory (`SharedTensor`, `SharedArray`,
/// `SharedTable`), handles and results.
///
/// ```swift
/// try await r.call("seq", 1, 10, named: ["by": 0.5])
/// try await brms.brm(RFormula("y ~ x"), data: table, family: .call("gaussian"), chains: 2)
/// ```
public protocol RValueConvertible: Sendable {
    /// The value as R gets it.
    var rValue: RValue { get }
}

extension RValueConvertible where Self == RValue {
    /// The value of calling `function` with `arguments` in R: `.call("poisson")` is `poisson()`.
    public static func call(_ function: String, _ arguments: any RValueConvertible...) -> RValue {
        .call(function, arguments.map { RArgument(nil, $0.rValue) })
    }

    /// The value of calling `function` with positional and named arguments in R.
    public static func call(_ function: String, _ arguments: [any RValueConvertible], named: KeyValuePairs<String, any RValueConvertible>) -> RValue {
        .call(function, arguments.map { RArgument(nil, $0.rValue) } + named.map { RArgument($0.key, $0.value.rValue) })
    }
}

/// A formula, parsed in R's global environment: `RFormula("count ~ zAge + (1 | patient)")`.
public struct RFormula: RValueConvertible {
    /// The formula's text.
    public var text: String

    /// The formula `text`.
    public init(_ text: String) {
        self.text = text
    }

    public var rValue: RValue { .formula(text) }
}

extension RValue: RValueConvertible {
    public var rValue: RValue { self }
}

extension RResult: RValueConvertible {
    /// The result's value (a handle passed back is the object itself).
    public var rValue: RValue { value }
}

extension RObject: RValueConvertible {
    public nonisolated var rValue: RValue { .object(self) }
}

extension Int: RValueConvertible {
    /// An integer when it fits R's 32 bits, a double otherwise.
    public var rValue: RValue { Int32(exactly: self).map { .integer([$0]) } ?? .double([Double(self)]) }
}

extension Int32: RValueConvertible {
    public var rValue: RValue { .integer([self]) }
}

extension Double: RValueConvertible {
    public var rValue: RValue { .double([self]) }
}

extension String: RValueConvertible {
    public var rValue: RValue { .character([self]) }
}

extension Bool: RValueConvertible {
    public var rValue: RValue { .logical([self]) }
}

extension Array: RValueConvertible where Element: RVectorElement {
    public var rValue: RValue { Element.vector(self) }
}

extension SharedTable: RValueConvertible {
    public var rValue: RValue { .table(self) }
}

extension SharedTensor: RValueConvertible where Element: RSharedElement {
    public var rValue: RValue { Element.tensor(self) }
}

extension SharedArray: RValueConvertible where Element: RSharedElement {
    /// A vector over the array's memory (no copy).
    public var rValue: RValue {
        // A contiguous one-dimensional view of the whole array cannot fail.
        Element.tensor(try! SharedTensor(self, shape: [count], layout: .columnMajor))
    }
}

/// Element types of Swift arrays that are R vectors.
public protocol RVectorElement: Sendable {
    /// An R vector of `elements`.
    static func vector(_ elements: [Self]) -> RValue
}

extension Double: RVectorElement {
    public static func vector(_ elements: [Double]) -> RValue { .double(elements) }
}

extension Int32: RVectorElement {
    public static func vector(_ elements: [Int32]) -> RValue { .integer(elements) }
}

extension Int: RVectorElement {
    /// Integers when every one fits R's 32 bits, doubles otherwise.
    public static func vector(_ elements: [Int]) -> RValue {
        let narrow = elements.compactMap { Int32(exactly: $0) }
        return narrow.count == elements.count ? .integer(narrow) : .double(elements.map(Double.init))
    }
}

extension String: RVectorElement {
    public static func vector(_ elements: [String]) -> RValue { .character(elements) }
}

extension Bool: RVectorElement {
    public static func vector(_ elements: [Bool]) -> RValue { .logical(elements) }
}

extension Optional: RVectorElement where Wrapped: ROptionalVectorElement {
    /// A vector with `NA` for nil.
    public static func vector(_ elements: [Wrapped?]) -> RValue { Wrapped.vector(elements) }
}

/// Element types whose optional arrays are R vectors with `NA`s.
public protocol ROptionalVectorElement: Sendable {
    /// An R vector of `elements`, `NA` for nil.
    static func vector(_ elements: [Self?]) -> RValue
}

extension Double: ROptionalVectorElement {
    public static func vector(_ elements: [Double?]) -> RValue { .double(elements) }
}

extension Int32: ROptionalVectorElement {
    public static func vector(_ elements: [Int32?]) -> RValue { .integer(elements) }
}

extension String: ROptionalVectorElement {
    public static func vector(_ elements: [String?]) -> RValue { .character(elements) }
}

extension Bool: ROptionalVectorElement {
    public static func vector(_ elements: [Bool?]) -> RValue { .logical(elements) }
}

/// Element types R reads from shared memory as they lie: `Double` and `Int32`.
public protocol RSharedElement: BitwiseCopyable, Sendable {
    /// `tensor` as an R value.
    static func tensor(_ tensor: SharedTensor<Self>) -> RValue
}

extension Double: RSharedElement {
    public static func tensor(_ tensor: SharedTensor<Double>) -> RValue { .doubles(tensor) }
}

extension Int32: RSharedElement {
    public static func tensor(_ tensor: SharedTensor<Int32>) -> RValue { .integers(tensor) }
}
