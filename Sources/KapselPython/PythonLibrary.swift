#if canImport(Glibc)
import Glibc
#endif

/// The functions and objects of CPython's C API Kapsel uses, found at run time in the
/// interpreter's shared library (`dlopen`), so Kapsel builds without Python headers and
/// a daemon can embed whichever interpreter it is given.
///
/// `@unchecked Sendable`: every stored property is an immutable `let` holding the address
/// of a C function or of a static object of the library, which any thread may hold and
/// copy; they are used only with the GIL held (`EmbeddedPython` takes it around every
/// use), which is CPython's own rule for them.
struct PythonLibrary: @unchecked Sendable {
    typealias Object = OpaquePointer

    let initialize: @convention(c) (Int32) -> Void
    let saveThread: @convention(c) () -> OpaquePointer?
    let ensureGIL: @convention(c) () -> Int32
    let releaseGIL: @convention(c) (Int32) -> Void
    let runString: @convention(c) (UnsafePointer<CChar>) -> Int32
    let addModule: @convention(c) (UnsafePointer<CChar>) -> Object?
    let getAttribute: @convention(c) (Object, UnsafePointer<CChar>) -> Object?
    let call: @convention(c) (Object, Object, Object?) -> Object?
    let typeOf: @convention(c) (Object) -> Object?
    let incrementReference: @convention(c) (Object) -> Void
    let decrementReference: @convention(c) (Object) -> Void
    let printError: @convention(c) () -> Void
    let errorOccurred: @convention(c) () -> Object?
    let clearError: @convention(c) () -> Void
    let setAsyncException: @convention(c) (UInt, Object?) -> Int32
    let internString: @convention(c) (UnsafePointer<CChar>) -> Object?

    let stringFromUTF8: @convention(c) (UnsafePointer<CChar>, Int) -> Object?
    let stringAsUTF8: @convention(c) (Object, UnsafeMutablePointer<Int>) -> UnsafePointer<CChar>?
    let integerFromInt64: @convention(c) (Int64) -> Object?
    let integerAsInt64: @convention(c) (Object, UnsafeMutablePointer<Int32>) -> Int64
    let floatFromDouble: @convention(c) (Double) -> Object?
    let floatAsDouble: @convention(c) (Object) -> Double
    let boolFromInt: @convention(c) (Int) -> Object?
    let newTuple: @convention(c) (Int) -> Object?
    let setTupleItem: @convention(c) (Object, Int, Object) -> Int32
    let tupleSize: @convention(c) (Object) -> Int
    let tupleItem: @convention(c) (Object, Int) -> Object?
    let newList: @convention(c) (Int) -> Object?
    let setListItem: @convention(c) (Object, Int, Object) -> Int32
    let listSize: @convention(c) (Object) -> Int
    let listItem: @convention(c) (Object, Int) -> Object?
    let newDictionary: @convention(c) () -> Object?
    let setDictionaryItem: @convention(c) (Object, Object, Object) -> Int32
    let nextDictionaryItem: @convention(c) (Object, UnsafeMutablePointer<Int>, UnsafeMutablePointer<Object?>, UnsafeMutablePointer<Object?>) -> Int32

    /// The static objects and types plain values are told apart by.
    let none: Object
    let `true`: Object
    let integerType: Object
    let floatType: Object
    let stringType: Object
    let boolType: Object
    let listType: Object
    let tupleType: Object
    let dictionaryType: Object
    /// The `TimeoutError` class, raised in a call that is interrupted.
    let timeoutError: Object

    /// Loads `path` with its symbols global (extension modules such as numpy link
    /// against them) and finds the functions.
    init(path: String) throws {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL) else {
            throw PythonError(type: "RuntimeNotLoadable", message: "cannot load \(path): \(String(cString: dlerror()))")
        }
        func address(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let address = dlsym(handle, name) else {
                throw PythonError(type: "RuntimeNotLoadable", message: "\(path) has no \(name)")
            }
            return address
        }
        func symbol<T>(_ name: String, as type: T.Type) throws -> T {
            unsafeBitCast(try address(name), to: type)
        }
        func object(_ name: String) throws -> Object {
            OpaquePointer(try address(name))
        }
        initialize = try symbol("Py_InitializeEx", as: (@convention(c) (Int32) -> Void).self)
        saveThread = try symbol("PyEval_SaveThread", as: (@convention(c) () -> OpaquePointer?).self)
        ensureGIL = try symbol("PyGILState_Ensure", as: (@convention(c) () -> Int32).self)
        releaseGIL = try symbol("PyGILState_Release", as: (@convention(c) (Int32) -> Void).self)
        runString = try symbol("PyRun_SimpleString", as: (@convention(c) (UnsafePointer<CChar>) -> Int32).self)
        addModule = try symbol("PyImport_AddModule", as: (@convention(c) (UnsafePointer<CChar>) -> Object?).self)
        getAttribute = try symbol("PyObject_GetAttrString", as: (@convention(c) (Object, UnsafePointer<CChar>) -> Object?).self)
        call = try symbol("PyObject_Call", as: (@convention(c) (Object, Object, Object?) -> Object?).self)
        typeOf = try symbol("PyObject_Type", as: (@convention(c) (Object) -> Object?).self)
        incrementReference = try symbol("Py_IncRef", as: (@convention(c) (Object) -> Void).self)
        decrementReference = try symbol("Py_DecRef", as: (@convention(c) (Object) -> Void).self)
        printError = try symbol("PyErr_Print", as: (@convention(c) () -> Void).self)
        errorOccurred = try symbol("PyErr_Occurred", as: (@convention(c) () -> Object?).self)
        clearError = try symbol("PyErr_Clear", as: (@convention(c) () -> Void).self)
        setAsyncException = try symbol("PyThreadState_SetAsyncExc", as: (@convention(c) (UInt, Object?) -> Int32).self)
        internString = try symbol("PyUnicode_InternFromString", as: (@convention(c) (UnsafePointer<CChar>) -> Object?).self)
        stringFromUTF8 = try symbol("PyUnicode_FromStringAndSize", as: (@convention(c) (UnsafePointer<CChar>, Int) -> Object?).self)
        stringAsUTF8 = try symbol("PyUnicode_AsUTF8AndSize", as: (@convention(c) (Object, UnsafeMutablePointer<Int>) -> UnsafePointer<CChar>?).self)
        integerFromInt64 = try symbol("PyLong_FromLongLong", as: (@convention(c) (Int64) -> Object?).self)
        integerAsInt64 = try symbol("PyLong_AsLongLongAndOverflow", as: (@convention(c) (Object, UnsafeMutablePointer<Int32>) -> Int64).self)
        floatFromDouble = try symbol("PyFloat_FromDouble", as: (@convention(c) (Double) -> Object?).self)
        floatAsDouble = try symbol("PyFloat_AsDouble", as: (@convention(c) (Object) -> Double).self)
        boolFromInt = try symbol("PyBool_FromLong", as: (@convention(c) (Int) -> Object?).self)
        newTuple = try symbol("PyTuple_New", as: (@convention(c) (Int) -> Object?).self)
        setTupleItem = try symbol("PyTuple_SetItem", as: (@convention(c) (Object, Int, Object) -> Int32).self)
        tupleSize = try symbol("PyTuple_Size", as: (@convention(c) (Object) -> Int).self)
        tupleItem = try symbol("PyTuple_GetItem", as: (@convention(c) (Object, Int) -> Object?).self)
        newList = try symbol("PyList_New", as: (@convention(c) (Int) -> Object?).self)
        setListItem = try symbol("PyList_SetItem", as: (@convention(c) (Object, Int, Object) -> Int32).self)
        listSize = try symbol("PyList_Size", as: (@convention(c) (Object) -> Int).self)
        listItem = try symbol("PyList_GetItem", as: (@convention(c) (Object, Int) -> Object?).self)
        newDictionary = try symbol("PyDict_New", as: (@convention(c) () -> Object?).self)
        setDictionaryItem = try symbol("PyDict_SetItem", as: (@convention(c) (Object, Object, Object) -> Int32).self)
        nextDictionaryItem = try symbol(
            "PyDict_Next", as: (@convention(c) (Object, UnsafeMutablePointer<Int>, UnsafeMutablePointer<Object?>, UnsafeMutablePointer<Object?>) -> Int32).self)
        none = try object("_Py_NoneStruct")
        `true` = try object("_Py_TrueStruct")
        integerType = try object("PyLong_Type")
        floatType = try object("PyFloat_Type")
        stringType = try object("PyUnicode_Type")
        boolType = try object("PyBool_Type")
        listType = try object("PyList_Type")
        tupleType = try object("PyTuple_Type")
        dictionaryType = try object("PyDict_Type")
        // `PyExc_TimeoutError` is a variable holding the class.
        timeoutError = try address("PyExc_TimeoutError").load(as: Object.self)
    }
}
