#if canImport(Glibc)
import Glibc
#endif

/// Takes the GIL on whichever thread calls Python, keeping each thread's Python thread
/// state for good after its first call.
///
/// Sessions' calls and releases run on `InterpreterThread`; an interrupt runs on a
/// short-lived thread of its own, which does not keep its state. CPython gives a thread that
/// takes the GIL with `PyGILState_Ensure` a thread state and, by default, destroys it (and
/// its frame stack: an `mmap` and a `munmap`) when the thread lets the GIL go. Here a
/// thread's first call takes one more count on its state and keeps it, so later calls
/// only take and drop the GIL.
enum PythonThreadStates {
    /// Marks the threads that keep a thread state.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "kapsel: cannot create a thread-specific key")
        return key
    }()

    /// Runs `body` holding the GIL; `keeping`: the calling thread keeps its thread state.
    static func withGIL<T>(_ library: PythonLibrary, keeping: Bool = true, _ body: () throws -> T) rethrows -> T {
        if keeping, pthread_getspecific(key) == nil {
            // One count that is never given back: the state outlives every call.
            _ = library.ensureGIL()
            _ = library.saveThread()
            pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
        }
        let state = library.ensureGIL()
        defer { library.releaseGIL(state) }
        return try body()
    }
}
