/// Raw bytes in shared memory: the base of `SharedArray` and `SharedTensor`.
///
/// ```swift
/// var buffer = try SharedBuffer(byteCount: 4096)
/// buffer.withUnsafeMutableBytes { $0.storeBytes(of: 42, as: Int.self) }
/// let handle = daemons.submit(Checksum(data: buffer))   // travels as a descriptor, not bytes
/// ```
///
/// A `SharedBuffer` is a value: copies share memory until one of them is written, then
/// the writer gets its own memory (copy on write), as with `Array`. Memory that has been
/// sent to another process, received from one, or exported to Arrow is frozen: writing
/// through such a value copies first, so a receiver never sees bytes change under it.
public struct SharedBuffer: Sendable {
    package private(set) var storage: SharedStorage
    /// Offset of the first byte within the storage's payload.
    package private(set) var offset: Int
    /// Number of bytes.
    public private(set) var count: Int

    /// Zero-filled shared memory of `byteCount` bytes.
    public init(byteCount: Int) throws {
        storage = SharedStorage(segment: try SharedSegment.allocate(byteCount: byteCount))
        offset = 0
        count = byteCount
    }

    /// A view of `count` bytes at `offset` of `storage`'s payload.
    package init(storage: SharedStorage, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset + count <= storage.segment.byteCount, "a view outside its segment")
        self.storage = storage
        self.offset = offset
        self.count = count
    }

    /// Whether writing would copy first, because the memory is frozen or shared with
    /// another copy of this value.
    public var isReadOnly: Bool { storage.isFrozen }

    /// The bytes, valid only inside `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.segment.payload + offset, count: count))
    }

    /// The bytes, writable, valid only inside `body`. Copies into new shared memory
    /// first when the memory is frozen or shared with another copy of this value
    /// (allocation failure there stops the program, as it does for `Array`).
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        makeUniqueAndWritable()
        return try body(UnsafeMutableRawBufferPointer(start: storage.segment.payload + offset, count: count))
    }

    /// A view of part of the bytes, sharing memory.
    public func slice(offset start: Int, count length: Int) -> SharedBuffer {
        precondition(start >= 0 && length >= 0 && start + length <= count, "slice out of bounds")
        return SharedBuffer(storage: storage, offset: offset + start, count: length)
    }

    private mutating func makeUniqueAndWritable() {
        if isKnownUniquelyReferenced(&storage) && !storage.isFrozen { return }
        let copy: SharedSegment
        do {
            copy = try SharedSegment.allocate(byteCount: count)
        } catch {
            fatalError("kapsel: copy on write of \(count) bytes of shared memory failed: \(error)")
        }
        copy.payload.copyMemory(from: storage.segment.payload + offset, byteCount: count)
        storage = SharedStorage(segment: copy)
        offset = 0
    }
}
