import CKapselShim
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One shared memory file (a memfd on Linux) mapped into this process.
///
/// Layout: a 64-byte header (magic, version, payload size), then the payload, which is
/// therefore 64-byte aligned. The file's size is sealed once set, so no process holding
/// it can shrink it under another's mapping. The kernel frees the memory when the last
/// descriptor and the last mapping are gone, in whatever process: a crash on either side
/// leaks nothing, and nothing ever appears in `/dev/shm`.
///
/// `@unchecked Sendable`: every stored property is an immutable `let` (a descriptor, an
/// address, sizes); the bytes behind `base` are written only through `SharedBuffer`'s
/// mutating API, which first makes sure its storage is uniquely referenced and not
/// frozen (never shared with another process or exported), so no two threads or
/// processes ever write or read-while-written the same bytes through Kapsel.
package final class SharedSegment: @unchecked Sendable {
    /// Bytes before the payload.
    package static let headerSize = 64
    private static let magic: UInt64 = 0x3153_4C45_5350_414B // "KAPSELS1" little-endian

    /// The descriptor that keeps the memory alive and can be sent to another process.
    package let descriptor: Int32
    /// Start of the mapping (the header).
    private let base: UnsafeMutableRawPointer
    private let mappedLength: Int
    /// Payload size in bytes.
    package let byteCount: Int
    /// Whether this process mapped it writable (only the process that created it does).
    package let isWritable: Bool

    private init(descriptor: Int32, base: UnsafeMutableRawPointer, mappedLength: Int, byteCount: Int, isWritable: Bool) {
        self.descriptor = descriptor
        self.base = base
        self.mappedLength = mappedLength
        self.byteCount = byteCount
        self.isWritable = isWritable
    }

    deinit {
        munmap(base, mappedLength)
        close(descriptor)
    }

    /// The payload's first byte.
    package var payload: UnsafeMutableRawPointer { base + Self.headerSize }

    /// A new zero-filled, writable segment with room for `byteCount` payload bytes.
    package static func allocate(byteCount: Int) throws(SharedMemoryError) -> SharedSegment {
        precondition(byteCount >= 0, "a negative size")
        let total = Self.headerSize + byteCount
        let fd = kapsel_shared_memory_create("kapsel", UInt64(total))
        guard fd >= 0 else { throw SharedMemoryError("cannot create \(byteCount) bytes of shared memory", errno: errno) }
        guard kapsel_seal_size(fd) == 0 else {
            let code = errno
            close(fd)
            throw SharedMemoryError("cannot seal the size of shared memory", errno: code)
        }
        guard let base = mmap(nil, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            let code = errno
            close(fd)
            throw SharedMemoryError("cannot map \(byteCount) bytes of shared memory", errno: code)
        }
        base.storeBytes(of: magic, toByteOffset: 0, as: UInt64.self)
        base.storeBytes(of: UInt32(1), toByteOffset: 8, as: UInt32.self)
        base.storeBytes(of: UInt64(byteCount), toByteOffset: 16, as: UInt64.self)
        return SharedSegment(descriptor: fd, base: base, mappedLength: total, byteCount: byteCount, isWritable: true)
    }

    /// Maps, read-only, a segment another process sent, taking ownership of `descriptor`
    /// (closed on failure). The segment must be a Kapsel segment whose size is sealed
    /// and holds at least `minimumByteCount` payload bytes: a peer cannot make this
    /// process fault by lying about sizes.
    package static func adopt(descriptor fd: Int32, minimumByteCount: Int) throws(SharedMemoryError) -> SharedSegment {
        func fail(_ text: String) -> SharedMemoryError {
            close(fd)
            return SharedMemoryError(text)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw fail("cannot inspect a received descriptor") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw fail("a received descriptor is not shared memory") }
        let fileSize = Int(info.st_size)
        guard kapsel_is_shrink_sealed(fd) != 0 else { throw fail("received shared memory is not size-sealed; refusing to map it") }
        guard fileSize >= Self.headerSize, minimumByteCount >= 0, fileSize - Self.headerSize >= minimumByteCount else {
            throw fail("received shared memory holds \(max(0, fileSize - Self.headerSize)) bytes, fewer than the \(minimumByteCount) announced")
        }
        guard let base = mmap(nil, fileSize, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw fail("cannot map received shared memory: \(String(cString: strerror(errno)))")
        }
        let magicFound = base.load(fromByteOffset: 0, as: UInt64.self)
        let declared = Int(truncatingIfNeeded: base.load(fromByteOffset: 16, as: UInt64.self))
        guard magicFound == magic, declared >= minimumByteCount, declared <= fileSize - Self.headerSize else {
            munmap(base, fileSize)
            throw fail("received memory is not a Kapsel segment (bad header)")
        }
        return SharedSegment(descriptor: fd, base: base, mappedLength: fileSize, byteCount: declared, isWritable: false)
    }
}

/// A private, writable view of a segment: reading it reads the shared memory where it
/// lies; writing a page gives this process a copy of that page of its own (copy on
/// write), which no other process, nor any other view, sees. For code that may write what
/// it is handed (R does, in place, to vectors it believes it alone holds).
///
/// `@unchecked Sendable`: its stored properties are immutable `let`s (an address and
/// lengths, and the segment it keeps alive); the private pages behind `base` belong to
/// whoever holds this view, which hands them to one consumer.
package final class PrivateView: @unchecked Sendable {
    /// The view's copy of the segment's first payload byte.
    package let payload: UnsafeMutableRawPointer
    private let base: UnsafeMutableRawPointer
    private let length: Int
    /// Keeps the memory (and its descriptor) alive while the view exists.
    private let segment: SharedSegment

    fileprivate init(segment: SharedSegment, base: UnsafeMutableRawPointer, length: Int) {
        self.segment = segment
        self.base = base
        self.length = length
        self.payload = base + SharedSegment.headerSize
    }

    deinit {
        munmap(base, length)
    }
}

extension SharedSegment {
    /// A private, writable view of this segment (see `PrivateView`).
    package func privateView() throws(SharedMemoryError) -> PrivateView {
        let length = Self.headerSize + byteCount
        guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, descriptor, 0), base != MAP_FAILED else {
            throw SharedMemoryError("cannot map a private view of shared memory", errno: errno)
        }
        return PrivateView(segment: self, base: base, length: length)
    }
}

