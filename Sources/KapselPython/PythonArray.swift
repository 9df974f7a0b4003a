import Kapsel

/// An n-dimensional array in shared memory as numpy sees it: element type, shape and
/// strides over a shared buffer. As a `PythonValue` it reaches Python as a numpy array
/// *viewing* the shared memory (read-only there once sent, as all sent memory is), and a
/// numpy array Python returns comes back as one, copied once into shared memory.
///
/// ```swift
/// let samples = try SharedArray<Double>(count: 1_000_000) { $0.initialize(repeating: 0.5) }
/// let total = try await python.call("numpy.sum", .array(PythonArray(samples)))     // no copy
/// let grid = try await python.call("numpy.linspace", 0, 1, 5).array!.tensor(of: Double.self)
/// ```
public struct PythonArray: Codable, Sendable {
    /// The element type, as numpy's type string (little-endian).
    public let elementType: String
    /// Elements along each dimension.
    public let shape: [Int]
    /// Elements between neighbours along each dimension.
    public let strides: [Int]
    /// The memory.
    public let buffer: SharedBuffer

    /// A tensor's elements, shape and strides, sharing its memory.
    public init<Element: PythonElement>(_ tensor: SharedTensor<Element>) {
        elementType = Element.pythonType
        shape = tensor.shape
        strides = tensor.strides
        buffer = tensor.buffer
    }

    /// An array's elements as a one-dimensional array, sharing its memory.
    public init<Element: PythonElement>(_ array: SharedArray<Element>) {
        elementType = Element.pythonType
        shape = [array.count]
        strides = [1]
        buffer = array.buffer
    }

    init(elementType: String, shape: [Int], strides: [Int], buffer: SharedBuffer) {
        self.elementType = elementType
        self.shape = shape
        self.strides = strides
        self.buffer = buffer
    }

    /// The array as a tensor of `type`, sharing its memory; throws if the element type differs.
    public func tensor<Element: PythonElement>(of type: Element.Type) throws -> SharedTensor<Element> {
        guard Element.pythonType == elementType else {
            throw PythonError(type: "TypeError", message: "the array holds \(elementType), not \(Element.pythonType)")
        }
        return try SharedTensor(buffer: buffer, shape: shape, strides: strides)
    }
}

/// An element type numpy and Swift share.
public protocol PythonElement: BitwiseCopyable {
    /// numpy's type string for it, e.g. `<f8`.
    static var pythonType: String { get }
}

extension Double: PythonElement { public static var pythonType: String { "<f8" } }
extension Float: PythonElement { public static var pythonType: String { "<f4" } }
extension Int64: PythonElement { public static var pythonType: String { "<i8" } }
extension Int32: PythonElement { public static var pythonType: String { "<i4" } }
extension Int16: PythonElement { public static var pythonType: String { "<i2" } }
extension Int8: PythonElement { public static var pythonType: String { "|i1" } }
extension UInt64: PythonElement { public static var pythonType: String { "<u8" } }
extension UInt32: PythonElement { public static var pythonType: String { "<u4" } }
extension UInt16: PythonElement { public static var pythonType: String { "<u2" } }
extension UInt8: PythonElement { public static var pythonType: String { "|u1" } }
extension Int: PythonElement { public static var pythonType: String { "<i8" } }

extension PythonArray: Equatable {
    /// Same element type, shape, strides and bytes.
    public static func == (left: PythonArray, right: PythonArray) -> Bool {
        guard left.elementType == right.elementType, left.shape == right.shape, left.strides == right.strides,
              left.buffer.count == right.buffer.count else { return false }
        return left.buffer.withUnsafeBytes { a in right.buffer.withUnsafeBytes { b in a.elementsEqual(b) } }
    }
}
