/// An n-dimensional array in shared memory with explicit shape and strides.
///
/// A column-major matrix stays column-major on the way to a daemon and back (only
/// the shape and strides travel with the descriptor; no transposing copy), and
/// `transposed()` is a view.
///
/// ```swift
/// var matrix = try SharedTensor<Double>(shape: [3, 4], layout: .columnMajor)
/// matrix[2, 1] = 5
/// matrix.strides          // [1, 3]
/// ```
public struct SharedTensor<Element: BitwiseCopyable> {
    /// The order of elements in memory.
    public enum Layout: String, Sendable, Codable {
        /// The last index varies fastest (C, NumPy's default).
        case rowMajor
        /// The first index varies fastest (Fortran, R, LAPACK).
        case columnMajor
        /// Neither: a view with other strides.
        case strided
    }

    /// The memory behind the elements.
    public private(set) var buffer: SharedBuffer
    /// The size of each dimension.
    public let shape: [Int]
    /// Elements to skip to move one step along each dimension.
    public let strides: [Int]

    /// A zero-filled tensor of `shape` laid out as `layout` (`.rowMajor` or `.columnMajor`).
    public init(shape: [Int], layout: Layout = .rowMajor) throws {
        precondition(layout != .strided, "a new tensor is row-major or column-major")
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let count = shape.reduce(1, *)
        self.buffer = try SharedBuffer(byteCount: count * MemoryLayout<Element>.stride)
        self.shape = shape
        self.strides = Self.contiguousStrides(shape, layout)
    }

    /// A tensor of `shape` viewing `buffer` with `strides` (in elements), sharing memory.
    /// Throws if any element would lie outside the buffer.
    public init(buffer: SharedBuffer, shape: [Int], strides: [Int]) throws {
        guard shape.count == strides.count, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw SharedMemoryError("shape \(shape) and strides \(strides) do not match")
        }
        // Checked arithmetic: shapes and strides may come from another process.
        var lastOffset = 0
        for (extent, stride) in zip(shape, strides) {
            let (step, stepOverflow) = max(extent - 1, 0).multipliedReportingOverflow(by: stride)
            let (sum, sumOverflow) = lastOffset.addingReportingOverflow(step)
            guard !stepOverflow, !sumOverflow else {
                throw SharedMemoryError("shape \(shape) with strides \(strides) reaches beyond any buffer")
            }
            lastOffset = sum
        }
        let (needed, neededOverflow) = shape.contains(0) ? (0, false) : (lastOffset + 1).multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        guard !neededOverflow, needed <= buffer.count, buffer.offset % MemoryLayout<Element>.alignment == 0 else {
            throw SharedMemoryError("shape \(shape) with strides \(strides) needs \(needed) bytes; the buffer has \(buffer.count)")
        }
        self.buffer = buffer
        self.shape = shape
        self.strides = strides
    }

    /// A tensor viewing the elements of `array` as `shape`, in `layout` order, sharing memory.
    public init(_ array: SharedArray<Element>, shape: [Int], layout: Layout = .rowMajor) throws {
        precondition(layout != .strided, "give explicit strides with init(buffer:shape:strides:)")
        guard shape.reduce(1, *) == array.count else {
            throw SharedMemoryError("shape \(shape) does not hold \(array.count) elements")
        }
        try self.init(buffer: array.buffer, shape: shape, strides: Self.contiguousStrides(shape, layout))
    }

    /// Strides of a contiguous tensor of `shape` in `layout` order.
    public static func contiguousStrides(_ shape: [Int], _ layout: Layout) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        let order = layout == .columnMajor ? Array(shape.indices) : Array(shape.indices.reversed())
        var step = 1
        for dimension in order {
            strides[dimension] = step
            step *= max(shape[dimension], 1)
        }
        return strides
    }

    /// How the elements are ordered in memory.
    public var layout: Layout {
        if strides == Self.contiguousStrides(shape, .rowMajor) { return .rowMajor }
        if strides == Self.contiguousStrides(shape, .columnMajor) { return .columnMajor }
        return .strided
    }

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }

    private func offset(_ indices: [Int]) -> Int {
        precondition(indices.count == shape.count, "\(indices.count) indices for \(shape.count) dimensions")
        var offset = 0
        for (dimension, index) in indices.enumerated() {
            precondition(index >= 0 && index < shape[dimension], "index \(index) out of range for dimension \(dimension) of \(shape)")
            offset += index * strides[dimension]
        }
        return offset * MemoryLayout<Element>.stride
    }

    /// The element at `indices`.
    public subscript(_ indices: Int...) -> Element {
        get { buffer.withUnsafeBytes { $0.load(fromByteOffset: offset(indices), as: Element.self) } }
        set {
            let byteOffset = offset(indices)
            buffer.withUnsafeMutableBytes { $0.storeBytes(of: newValue, toByteOffset: byteOffset, as: Element.self) }
        }
    }

    /// The transpose (dimensions reversed): a view, no copy. A row-major matrix's
    /// transpose is column-major and the other way round.
    public func transposed() -> SharedTensor {
        // The reversed strides address the same elements, so the bounds check cannot fail.
        try! SharedTensor(buffer: buffer, shape: shape.reversed(), strides: strides.reversed())
    }

    /// The memory behind the tensor as elements, in memory order.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try buffer.withUnsafeBytes { raw in
            try body(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: Element.self), count: raw.count / MemoryLayout<Element>.stride))
        }
    }

    /// The memory behind the tensor as writable elements (copy on write first, if needed).
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Element>) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutableBytes { raw in
            var elements = UnsafeMutableBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: Element.self), count: raw.count / MemoryLayout<Element>.stride)
            return try body(&elements)
        }
    }
}

extension SharedTensor: Sendable where Element: Sendable {}
