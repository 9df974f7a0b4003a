/// The raw buffers of one Arrow array, valid while their owner lives.
public struct ArrowBuffers {
    /// Validity bitmap (bit set = valid), or nil when every value is valid.
    public var validity: UnsafeRawPointer?
    /// Fixed-width values, bit-packed booleans, or UTF-8 bytes (for `utf8`).
    public var values: UnsafeRawPointer?
    /// For `utf8`: `length + 1` 32-bit offsets into `values`.
    public var offsets: UnsafeRawPointer?
    /// Logical offset of the first element, in elements (and bits).
    public var offset: Int
}

/// Reading values of an Arrow array, whoever owns its memory: a Kapsel `SharedColumn`
/// or an `ImportedArrowArray` made by another library.
public protocol ArrowColumnReadable {
    /// The values' type.
    var arrowType: ArrowType { get }
    /// Number of values.
    var length: Int { get }
    /// Number of null values.
    var nullCount: Int { get }
    /// Calls `body` with the buffers.
    func withArrowBuffers<R>(_ body: (ArrowBuffers) throws -> R) rethrows -> R
}

extension ArrowColumnReadable {
    /// Whether value `index` is null.
    public func isNull(_ index: Int) -> Bool {
        precondition(index >= 0 && index < length, "index \(index) out of range 0..<\(length)")
        return withArrowBuffers { buffers in
            guard let validity = buffers.validity else { return false }
            return !bit(validity, buffers.offset + index)
        }
    }

    /// Value `index` as `T` (which must match the column's type), or nil if it is null.
    public func value<T: ArrowPrimitive>(_ index: Int, as type: T.Type = T.self) -> T? {
        precondition(T.arrowType == arrowType, "a \(arrowType) column read as \(T.self)")
        guard !isNull(index) else { return nil }
        return withArrowBuffers { $0.values!.loadUnaligned(fromByteOffset: ($0.offset + index) * MemoryLayout<T>.stride, as: T.self) }
    }

    /// Value `index` of a `bool` column, or nil if it is null.
    public func bool(_ index: Int) -> Bool? {
        precondition(arrowType == .bool, "a \(arrowType) column read as Bool")
        guard !isNull(index) else { return nil }
        return withArrowBuffers { bit($0.values!, $0.offset + index) }
    }

    /// Value `index` of a `utf8` column, or nil if it is null.
    public func string(_ index: Int) -> String? {
        precondition(arrowType == .utf8, "a \(arrowType) column read as String")
        guard !isNull(index) else { return nil }
        return withArrowBuffers { buffers in
            let offsets = buffers.offsets!
            let start = Int(offsets.loadUnaligned(fromByteOffset: (buffers.offset + index) * 4, as: Int32.self))
            let end = Int(offsets.loadUnaligned(fromByteOffset: (buffers.offset + index + 1) * 4, as: Int32.self))
            return String(decoding: UnsafeRawBufferPointer(start: buffers.values! + start, count: end - start), as: UTF8.self)
        }
    }
}

/// Bit `index` of an LSB-first bitmap.
func bit(_ bitmap: UnsafeRawPointer, _ index: Int) -> Bool {
    bitmap.load(fromByteOffset: index >> 3, as: UInt8.self) & (1 << UInt8(index & 7)) != 0
}
