import Kapsel
import Synchronization

/// Shared memory seen by R as numeric vectors, with no copy: two ALTREP classes (double
/// and integer) whose data pointer is the shared memory itself, through a private view
/// of it (`PrivateView`).
///
/// R reads through `REAL()` and `INTEGER()`, which also serve writing, so the pointer it
/// gets must be writable; and R does write in place to a vector it believes it alone
/// holds. The private view makes both right: R reads the shared pages where they lie, and
/// a page R writes becomes a copy of its own, which the sender never sees. The memory
/// stays alive while R holds the vector: its last reference going, R's garbage collector
/// runs the finalizer that lets the memory go.
enum SharedVectors {
    /// What an R vector over shared memory holds on to (made and used on R's thread).
    final class Box {
        let view: PrivateView
        let count: Int
        let address: UnsafeMutableRawPointer

        init(_ buffer: SharedBuffer, count: Int) throws {
            view = try buffer.storage.segment.privateView()
            self.count = count
            address = view.payload + buffer.offset
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
    static func make(_ buffer: SharedBuffer, count: Int, kind: Kind, _ library: RLibrary) throws -> SEXP {
        precondition(buffer.count >= count * (kind == .double ? 8 : 4), "a shared vector beyond its buffer")
        let box = Unmanaged.passRetained(try Box(buffer, count: count))
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

    private static func box(_ vector: SEXP) -> Box {
        let library = library!
        return Unmanaged<Box>.fromOpaque(library.externalPointerAddress(library.altrepData1(vector))!).takeUnretainedValue()
    }

    private static let length: @convention(c) (SEXP) -> Int = { vector in
        box(vector).count
    }

    private static let dataPointer: @convention(c) (SEXP, Int32) -> UnsafeMutableRawPointer? = { vector, _ in
        box(vector).address
    }

    private static let dataPointerOrNull: @convention(c) (SEXP) -> UnsafeRawPointer? = { vector in
        UnsafeRawPointer(box(vector).address)
    }

    private static let doubleElement: @convention(c) (SEXP, Int) -> Double = { vector, index in
        box(vector).address.load(fromByteOffset: index * 8, as: Double.self)
    }

    private static let integerElement: @convention(c) (SEXP, Int) -> Int32 = { vector, index in
        box(vector).address.load(fromByteOffset: index * 4, as: Int32.self)
    }
}
