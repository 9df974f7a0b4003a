import KapselSharedMemory

/// One named column of Arrow data whose buffers are all in shared memory: it crosses to
/// a daemon as descriptors, and exports to the Arrow C Data Interface without a copy.
///
/// ```swift
/// let prices = try SharedColumn.primitive("price", [1.5, nil, 3.0])
/// let names = try SharedColumn.utf8("name", ["a", "b", nil])
/// let table = try SharedTable([prices, names])
/// ```
public struct SharedColumn: Sendable, Codable, ArrowColumnReadable {
    /// The column's name.
    public let name: String
    /// The values' type.
    public let arrowType: ArrowType
    /// Number of values.
    public let length: Int
    /// Number of nulls.
    public let nullCount: Int
    package let validity: SharedBuffer?
    /// Values, bit-packed booleans, or UTF-8 bytes.
    package let values: SharedBuffer
    /// For `utf8`: `length + 1` offsets.
    package let offsets: SharedBuffer?

    /// A fixed-width column; nil elements are nulls.
    public static func primitive<T: ArrowPrimitive>(_ name: String, _ elements: [T?]) throws -> SharedColumn {
        let values = try SharedArray<T>(count: elements.count) { buffer in
            for (index, element) in elements.enumerated() { if let element { buffer[index] = element } }
        }
        return try SharedColumn(name: name, values: values, validity: elements.map { $0 != nil })
    }

    /// A column viewing `values` with no copy; `validity[i] == false` marks value `i` null.
    public init<T: ArrowPrimitive>(name: String, values: SharedArray<T>, validity: [Bool]? = nil) throws {
        if let validity, validity.count != values.count {
            throw ArrowError("\(validity.count) validity flags for \(values.count) values")
        }
        self.name = name
        self.arrowType = T.arrowType
        self.length = values.count
        self.values = values.buffer
        self.offsets = nil
        (self.validity, self.nullCount) = try Self.bitmap(validity)
    }

    /// Column `column` of a two-dimensional tensor, viewed with no copy. The column must
    /// be contiguous, as every column of a column-major tensor is.
    public init<T: ArrowPrimitive>(name: String, tensor: SharedTensor<T>, column: Int) throws {
        guard tensor.shape.count == 2, column >= 0, column < tensor.shape[1] else {
            throw ArrowError("column \(column) of a tensor of shape \(tensor.shape)")
        }
        guard tensor.strides[0] == 1 || tensor.shape[0] <= 1 else {
            throw ArrowError("the columns of a tensor with strides \(tensor.strides) are not contiguous; use a column-major tensor")
        }
        let rows = tensor.shape[0]
        let start = column * tensor.strides[1] * MemoryLayout<T>.stride
        let buffer = tensor.buffer.slice(offset: start, count: rows * MemoryLayout<T>.stride)
        try self.init(name: name, values: try SharedArray<T>(buffer: buffer, count: rows))
    }

    /// A boolean column; nil elements are nulls.
    public static func bool(_ name: String, _ elements: [Bool?]) throws -> SharedColumn {
        var bits = try SharedBuffer(byteCount: paddedBitmapBytes(elements.count))
        bits.withUnsafeMutableBytes { raw in
            for (index, element) in elements.enumerated() where element == true { raw[index >> 3] |= 1 << UInt8(index & 7) }
        }
        let (validity, nulls) = try bitmap(elements.map { $0 != nil })
        return SharedColumn(name: name, arrowType: .bool, length: elements.count, nullCount: nulls, validity: validity, values: bits, offsets: nil)
    }

    /// A UTF-8 string column; nil elements are nulls.
    public static func utf8(_ name: String, _ elements: [String?]) throws -> SharedColumn {
        let utf8 = elements.map { Array(($0 ?? "").utf8) }
        let total = utf8.reduce(0) { $0 + $1.count }
        guard total <= Int(Int32.max) else { throw ArrowError("\(total) bytes of strings exceed 32-bit offsets") }
        var data = try SharedBuffer(byteCount: max(total, 1))
        var offsets = try SharedBuffer(byteCount: (elements.count + 1) * 4)
        data.withUnsafeMutableBytes { bytes in
            offsets.withUnsafeMutableBytes { offsetBytes in
                var position = 0
                for (index, string) in utf8.enumerated() {
                    offsetBytes.storeBytes(of: Int32(position), toByteOffset: index * 4, as: Int32.self)
                    for byte in string { bytes[position] = byte; position += 1 }
                }
                offsetBytes.storeBytes(of: Int32(position), toByteOffset: elements.count * 4, as: Int32.self)
            }
        }
        let (validity, nulls) = try bitmap(elements.map { $0 != nil })
        return SharedColumn(name: name, arrowType: .utf8, length: elements.count, nullCount: nulls, validity: validity, values: data, offsets: offsets)
    }

    private init(name: String, arrowType: ArrowType, length: Int, nullCount: Int, validity: SharedBuffer?, values: SharedBuffer, offsets: SharedBuffer?) {
        self.name = name
        self.arrowType = arrowType
        self.length = length
        self.nullCount = nullCount
        self.validity = validity
        self.values = values
        self.offsets = offsets
    }

    /// A validity bitmap for `flags` (nil when all are valid) and the number of nulls.
    private static func bitmap(_ flags: [Bool]?) throws -> (SharedBuffer?, Int) {
        guard let flags, flags.contains(false) else { return (nil, 0) }
        var bitmap = try SharedBuffer(byteCount: paddedBitmapBytes(flags.count))
        bitmap.withUnsafeMutableBytes { raw in
            for (index, valid) in flags.enumerated() where valid { raw[index >> 3] |= 1 << UInt8(index & 7) }
        }
        return (bitmap, flags.lazy.filter { !$0 }.count)
    }

    /// Bytes of a bitmap of `count` bits, padded to 8 bytes as Arrow recommends.
    private static func paddedBitmapBytes(_ count: Int) -> Int {
        max(8, ((count + 63) / 64) * 8)
    }

    public func withArrowBuffers<R>(_ body: (ArrowBuffers) throws -> R) rethrows -> R {
        try values.withUnsafeBytes { valueBytes in
            try withOptionalBytes(validity) { validityBytes in
                try withOptionalBytes(offsets) { offsetBytes in
                    try body(ArrowBuffers(validity: validityBytes, values: valueBytes.baseAddress, offsets: offsetBytes, offset: 0))
                }
            }
        }
    }

    /// Whether the column's values are in memory received from another process (they
    /// crossed without a copy).
    public var isSharedMemory: Bool {
        !values.storage.segment.isWritable
    }

    /// The shared buffers behind the column, in Arrow's buffer order (validity first).
    var buffers: [SharedBuffer?] {
        arrowType == .utf8 ? [validity, offsets, values] : [validity, values]
    }
}

private func withOptionalBytes<R>(_ buffer: SharedBuffer?, _ body: (UnsafeRawPointer?) throws -> R) rethrows -> R {
    guard let buffer else { return try body(nil) }
    return try buffer.withUnsafeBytes { try body($0.baseAddress) }
}

/// Named columns of equal length, all in shared memory: a record batch.
public struct SharedTable: Sendable, Codable {
    /// The columns, in order.
    public let columns: [SharedColumn]
    /// Rows (every column's length).
    public let rowCount: Int

    /// A table of `columns`, which must all have the same length.
    public init(_ columns: [SharedColumn]) throws {
        let lengths = Set(columns.map(\.length))
        guard lengths.count <= 1 else { throw ArrowError("columns of different lengths: \(lengths.sorted())") }
        self.columns = columns
        self.rowCount = lengths.first ?? 0
    }

    /// The column named `name`.
    public subscript(name: String) -> SharedColumn? {
        columns.first { $0.name == name }
    }
}
