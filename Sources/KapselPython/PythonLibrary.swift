#if canImport(Glibc)
import Glibc
#endif

/// The few functions of CPython's C API Kapsel calls, found at run time in the
/// interpreter's shared library (`dlopen`), so Kapsel builds without Python headers and
/// a daemon can embed whichever interpreter it is given.
///
/// `@unchecked Sendable`: every stored property is an immutable `let` holding the address
/// of a C function, which any thread may hold and copy; the functions themselves are
/// called only with the GIL held (`EmbeddedPython` takes it around every use), which is
/// CPython's own rule for them.
struct PythonLibrary: @unchecked Sendable {
    typealias Object = OpaquePointer

    let initialize: @convention(c) (Int32) -> Void
    let saveThread: @convention(c) () -> OpaquePointer?
    let ensureGIL: @convention(c) () -> Int32
    let releaseGIL: @convention(c) (Int32) -> Void
    let runString: @convention(c) (UnsafePointer<CChar>) -> Int32
    let addModule: @convention(c) (UnsafePointer<CChar>) -> Object?
    let getAttribute: @convention(c) (Object, UnsafePointer<CChar>) -> Object?
    let stringFromUTF8: @convention(c) (UnsafePointer<CChar>, Int) -> Object?
    let stringAsUTF8: @convention(c) (Object, UnsafeMutablePointer<Int>) -> UnsafePointer<CChar>?
    let newTuple: @convention(c) (Int) -> Object?
    let setTupleItem: @convention(c) (Object, Int, Object) -> Int32
    let call: @convention(c) (Object, Object, Object?) -> Object?
    let decrementReference: @convention(c) (Object) -> Void
    let printError: @convention(c) () -> Void

    /// Loads `path` with its symbols global (extension modules such as numpy link
    /// against them) and finds the functions.
    init(path: String) throws {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL) else {
            throw PythonError(type: "RuntimeNotLoadable", message: "cannot load \(path): \(String(cString: dlerror()))")
        }
        func symbol<T>(_ name: String, as type: T.Type) throws -> T {
            guard let address = dlsym(handle, name) else {
                throw PythonError(type: "RuntimeNotLoadable", message: "\(path) has no \(name)")
            }
            return unsafeBitCast(address, to: type)
        }
        initialize = try symbol("Py_InitializeEx", as: (@convention(c) (Int32) -> Void).self)
        saveThread = try symbol("PyEval_SaveThread", as: (@convention(c) () -> OpaquePointer?).self)
        ensureGIL = try symbol("PyGILState_Ensure", as: (@convention(c) () -> Int32).self)
        releaseGIL = try symbol("PyGILState_Release", as: (@convention(c) (Int32) -> Void).self)
        runString = try symbol("PyRun_SimpleString", as: (@convention(c) (UnsafePointer<CChar>) -> Int32).self)
        addModule = try symbol("PyImport_AddModule", as: (@convention(c) (UnsafePointer<CChar>) -> Object?).self)
        getAttribute = try symbol("PyObject_GetAttrString", as: (@convention(c) (Object, UnsafePointer<CChar>) -> Object?).self)
        stringFromUTF8 = try symbol("PyUnicode_FromStringAndSize", as: (@convention(c) (UnsafePointer<CChar>, Int) -> Object?).self)
        stringAsUTF8 = try symbol("PyUnicode_AsUTF8AndSize", as: (@convention(c) (Object, UnsafeMutablePointer<Int>) -> UnsafePointer<CChar>?).self)
        newTuple = try symbol("PyTuple_New", as: (@convention(c) (Int) -> Object?).self)
        setTupleItem = try symbol("PyTuple_SetItem", as: (@convention(c) (Object, Int, Object) -> Int32).self)
        call = try symbol("PyObject_Call", as: (@convention(c) (Object, Object, Object?) -> Object?).self)
        decrementReference = try symbol("Py_DecRef", as: (@convention(c) (Object) -> Void).self)
        printError = try symbol("PyErr_Print", as: (@convention(c) () -> Void).self)
    }
}
