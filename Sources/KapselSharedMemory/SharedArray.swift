/// An array of plain values in shared memory: it crosses to a daemon and back as a
/// descriptor of a few hundred bytes, whatever its size, and is never copied on the way.
///
/// ```swift
/// var samples = try SharedArray<Double>(count: 125_000_000)      // 1 GiB, zero-filled
/// samples.withUnsafeMutableBufferPointer { fill($0) }            // written in place
/// let total = try await daemons.submit(Sum(values: samples)).value
/// ```
///
/// It is a `RandomAccessCollection` and a `MutableCollection` with value semantics
/// (copy on write, as `Array`). Once sent to another process — or received from one —
/// its memory is frozen: reading costs nothing, writing copies first (see `SharedBuffer`).
public struct SharedArray<Element: BitwiseCopyable>: RandomAccessCollection, MutableCollection {
    /// The memory behind the elements.
    public private(set) var buffer: SharedBuffer
    /// Number of elements.
    public let count: Int

    /// `count` elements, all bits zero (`0` for numbers).
    public init(count: Int) throws {
        precondition(count >= 0, "a negative count")
        precondition(MemoryLayout<Element>.alignment <= 64, "elements aligned beyond 64 bytes are not supported")
        self.buffer = try SharedBuffer(byteCount: count * MemoryLayout<Element>.stride)
        self.count = count
    }

    /// `count` copies of `value`.
    public init(repeating value: Element, count: Int) throws {
        try self.init(count: count)
        withUnsafeMutableBufferPointer { $0.initialize(repeating: value) }
    }

    /// The elements of `elements`, copied once into shared memory.
    public init<C: Collection>(_ elements: C) throws where C.Element == Element {
        try self.init(count: elements.count)
        withUnsafeMutableBufferPointer { destination in
            _ = destination.initialize(from: elements)
        }
    }

    /// `count` elements written in place by `initializer` (the memory starts zeroed):
    /// data produced straight into shared memory is never copied at all.
    public init(count: Int, initializingWith initializer: (inout UnsafeMutableBufferPointer<Element>) throws -> Void) throws {
        try self.init(count: count)
        try withUnsafeMutableBufferPointer(initializer)
    }

    /// A view of `count` elements of `buffer`, sharing its memory.
    public init(buffer: SharedBuffer, count: Int) throws {
        guard count >= 0, count <= buffer.count / MemoryLayout<Element>.stride else {
            throw SharedMemoryError("\(count) elements of \(Element.self) do not fit in \(buffer.count) bytes")
        }
        guard buffer.offset % MemoryLayout<Element>.alignment == 0 else {
            throw SharedMemoryError("the buffer is not aligned for \(Element.self)")
        }
        self.buffer = buffer
        self.count = count
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> Element {
        get {
            precondition(position >= 0 && position < count, "index \(position) out of range 0..<\(count)")
            return buffer.withUnsafeBytes { $0.load(fromByteOffset: position * MemoryLayout<Element>.stride, as: Element.self) }
        }
        set {
            precondition(position >= 0 && position < count, "index \(position) out of range 0..<\(count)")
            buffer.withUnsafeMutableBytes { $0.storeBytes(of: newValue, toByteOffset: position * MemoryLayout<Element>.stride, as: Element.self) }
        }
    }

    /// The elements, valid only inside `body`.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try buffer.withUnsafeBytes { raw in
            try body(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: Element.self), count: count))
        }
    }

    /// The elements, writable, valid only inside `body` (copy on write first, if needed).
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Element>) throws -> R) rethrows -> R {
        let count = self.count
        return try buffer.withUnsafeMutableBytes { raw in
            var elements = UnsafeMutableBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: Element.self), count: count)
            return try body(&elements)
        }
    }

    /// Whether writing would copy first (the memory is frozen or shared with another copy).
    public var isReadOnly: Bool { buffer.isReadOnly }
}

extension SharedArray: Sendable where Element: Sendable {}

extension SharedArray: Equatable where Element: Equatable {
    public static func == (lhs: SharedArray, rhs: SharedArray) -> Bool {
        lhs.elementsEqual(rhs)
    }
}

extension SharedArray: CustomStringConvertible {
    public var description: String {
        let shown = prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "SharedArray<\(Element.self)>(count: \(count), [\(shown)\(count > 8 ? ", ..." : "")])"
    }
}
