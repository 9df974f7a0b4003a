import Kapsel
import Synchronization

/// Shared memory seen by R as numeric vectors, with no copy: two ALTREP classes (double
/// and integer) whose data pointer is the shared memory itself.
///
/// The memory arrived from another process and is mapped read-only, so R never writes
/// it: when R asks to write (a `Dataptr` request for writing — R duplicates a vector
/// before most changes, but not all), the vector copies itself once into an ordinary R
/// vector (kept as the object's second datum) and is that from then on. The memory stays
/// alive while R holds the vector: its last reference going, R's garbage collector runs
/// the finalizer that lets the memory go.
enum SharedVectors {
    /// What an R vector over shared memory holds on to (made and used on R's thread).
    final class Box {
        let buffer: SharedBuffer
        let count: Int
        let address: UnsafeRawPointer

        init(_ buffer: SharedBuffer, count: Int) {
            self.buffer = buffer
            self.count = count
            self.address = buffer.withUnsafeBytes { UnsafeRawPointer($0.baseAddress!) }
            live.add(1, ordering: .relaxed)
        }

        deinit {
            live.subtract(1, ordering: .relaxed)
        }
    }

    /// The element types.
    enum Kind {
        case double, integer
    }

    /// Vectors over shared memory R has not collected yet.
    static let live = Atomic<Int>(0)

    /// R's functions for the methods, which R calls with no context of theirs.
    ///
    /// `nonisolated(unsafe)`: written once, by `register` on R's thread before any vector
    /// of these classes exists; only read afterwards, by the methods, which R calls on that
    /// same thread.
    nonisolated(unsafe) private static var library: RLibrary?
    nonisolated(unsafe) private static var doubleClass: OpaquePointer?
    nonisolated(unsafe) private static var integerClass: OpaquePointer?

    /// Makes the two classes (on R's thread, once, at start-up).
    static func register(_ library: RLibrary) throws {
        Self.library = library
        let doubles = library.makeAltrealClass("kapsel_shared_double", "kapsel", nil)
        library.setLengthMethod(doubles, length)
        library.setDataPointerMethod(doubles, dataPointer)
        library.setDataPointerOrNullMethod(doubles, dataPointerOrNull)
        library.setRealElementMethod(doubles, doubleElement)
        let integers = library.makeAltintegerClass("kapsel_shared_integer", "kapsel", nil)
        library.setLengthMethod(integers, length)
        library.setDataPointerMethod(integers, dataPointer)
        library.setDataPointerOrNullMethod(integers, dataPointerOrNull)
        library.setIntegerElementMethod(integers, integerElement)
        doubleClass = doubles
        integerClass = integers
    }

    /// An R vector of `count` elements of `kind` over `buffer` (unprotected; on R's thread).
    static func make(_ buffer: SharedBuffer, count: Int, kind: Kind, _ library: RLibrary) -> SEXP {
        precondition(buffer.count >= count * (kind == .double ? 8 : 4), "a shared vector beyond its buffer")
        let box = Unmanaged.passRetained(Box(buffer, count: count))
        let pointer = library.protect(library.makeExternalPointer(box.toOpaque(), library.null, library.null))
        library.registerFinalizer(pointer, finalize, 1)
        let vector = library.newAltrep(kind == .double ? doubleClass! : integerClass!, pointer, library.null)
        library.unprotect(1)
        return vector
    }

    private static let finalize: @convention(c) (SEXP) -> Void = { pointer in
        guard let library, let raw = library.externalPointerAddress(pointer) else { return }
        Unmanaged<Box>.fromOpaque(raw).release()
        library.clearExternalPointer(pointer)
    }

    private static func box(_ vector: SEXP, _ library: RLibrary) -> Box {
        Unmanaged<Box>.fromOpaque(library.externalPointerAddress(library.altrepData1(vector))!).takeUnretainedValue()
    }

    /// The ordinary copy the vector became when R wrote to it, if it did.
    private static func copy(_ vector: SEXP, _ library: RLibrary) -> SEXP? {
        let copy = library.altrepData2(vector)
        return copy == library.null ? nil : copy
    }

    private static let length: @convention(c) (SEXP) -> Int = { vector in
        box(vector, library!).count
    }

    private static let dataPointer: @convention(c) (SEXP, Int32) -> UnsafeMutableRawPointer? = { vector, writable in
        let library = library!
        if let copy = copy(vector, library) { return pointer(of: copy, library) }
        let box = box(vector, library)
        guard writable != 0 else { return UnsafeMutableRawPointer(mutating: box.address) }
        // The first write: the vector becomes an ordinary copy of itself.
        let isDouble = library.typeOf(vector) == RType.double.rawValue
        let copy = library.protect(library.allocVector(isDouble ? RType.double.code : RType.integer.code, box.count))
        let destination = pointer(of: copy, library)
        destination.copyMemory(from: box.address, byteCount: box.count * (isDouble ? 8 : 4))
        library.setAltrepData2(vector, copy)
        library.unprotect(1)
        return destination
    }

    private static let dataPointerOrNull: @convention(c) (SEXP) -> UnsafeRawPointer? = { vector in
        let library = library!
        if let copy = copy(vector, library) { return UnsafeRawPointer(pointer(of: copy, library)) }
        return box(vector, library).address
    }

    private static let doubleElement: @convention(c) (SEXP, Int) -> Double = { vector, index in
        let library = library!
        if let copy = copy(vector, library) { return library.real(copy)[index] }
        return box(vector, library).address.load(fromByteOffset: index * 8, as: Double.self)
    }

    private static let integerElement: @convention(c) (SEXP, Int) -> Int32 = { vector, index in
        let library = library!
        if let copy = copy(vector, library) { return library.integer(copy)[index] }
        return box(vector, library).address.load(fromByteOffset: index * 4, as: Int32.self)
    }

    private static func pointer(of vector: SEXP, _ library: RLibrary) -> UnsafeMutableRawPointer {
        library.typeOf(vector) == RType.double.rawValue
            ? UnsafeMutableRawPointer(library.real(vector)) : UnsafeMutableRawPointer(library.integer(vector))
    }
}
