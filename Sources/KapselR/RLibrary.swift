#if canImport(Glibc)
import Glibc
#endif

/// An R object: a `SEXP` of R's C API.
typealias SEXP = OpaquePointer

/// The part of R's C API Kapsel uses, found at run time in the runtime's `libR.so`
/// (`dlopen`), so Kapsel builds without R's headers and a daemon can embed whichever R it
/// is given. R's global variables are found as addresses and read after R starts.
///
/// `@unchecked Sendable`: every stored property is an immutable `let` holding the address
/// of a C function or of one of R's globals, which any thread may hold and copy; R itself
/// is called and its globals read only on the one thread that runs R (`RThread`), but for
/// `interruptsPending`, which R's own design has other threads set.
struct RLibrary: @unchecked Sendable {
    // Start-up
    let initialize: @convention(c) (Int32, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32
    let setupMainLoop: @convention(c) () -> Void
    let signalHandlers: UnsafeMutablePointer<Int32>
    let interactive: UnsafeMutablePointer<Int32>
    let stackStart: UnsafeMutablePointer<UInt>
    let stackLimit: UnsafeMutablePointer<UInt>
    let stackDirection: UnsafeMutablePointer<Int32>
    /// Set from another thread to interrupt what R runs.
    let interruptsPending: UnsafeMutablePointer<Int32>

    // Constants
    private let nilValue: UnsafeMutablePointer<SEXP>
    private let globalEnvironment: UnsafeMutablePointer<SEXP>
    private let naString: UnsafeMutablePointer<SEXP>
    private let namesSymbolAddress: UnsafeMutablePointer<SEXP>
    private let dimSymbolAddress: UnsafeMutablePointer<SEXP>
    private let classSymbolAddress: UnsafeMutablePointer<SEXP>
    private let levelsSymbolAddress: UnsafeMutablePointer<SEXP>
    private let rowNamesSymbolAddress: UnsafeMutablePointer<SEXP>
    let naInteger: UnsafeMutablePointer<Int32>
    let naReal: UnsafeMutablePointer<Double>

    // Evaluation
    let tryEval: @convention(c) (SEXP, SEXP, UnsafeMutablePointer<Int32>) -> SEXP?
    let parseVector: @convention(c) (SEXP, Int, UnsafeMutablePointer<Int32>, SEXP) -> SEXP
    let install: @convention(c) (UnsafePointer<CChar>) -> SEXP
    let lcons: @convention(c) (SEXP, SEXP) -> SEXP
    let cons: @convention(c) (SEXP, SEXP) -> SEXP
    let setTag: @convention(c) (SEXP, SEXP) -> Void
    let newEnvironment: @convention(c) (SEXP, Int32, Int32) -> SEXP
    let defineVariable: @convention(c) (SEXP, SEXP, SEXP) -> Void
    let findVariable: @convention(c) (SEXP, SEXP) -> SEXP

    // Memory
    let protect: @convention(c) (SEXP) -> SEXP
    let unprotect: @convention(c) (Int32) -> Void
    let preserve: @convention(c) (SEXP) -> Void
    let release: @convention(c) (SEXP) -> Void
    let allocVector: @convention(c) (UInt32, Int) -> SEXP

    // Vectors
    let typeOf: @convention(c) (SEXP) -> Int32
    let length: @convention(c) (SEXP) -> Int
    let real: @convention(c) (SEXP) -> UnsafeMutablePointer<Double>
    let integer: @convention(c) (SEXP) -> UnsafeMutablePointer<Int32>
    let logical: @convention(c) (SEXP) -> UnsafeMutablePointer<Int32>
    let stringElement: @convention(c) (SEXP, Int) -> SEXP
    let setStringElement: @convention(c) (SEXP, Int, SEXP) -> Void
    let vectorElement: @convention(c) (SEXP, Int) -> SEXP
    let setVectorElement: @convention(c) (SEXP, Int, SEXP) -> SEXP
    let characters: @convention(c) (SEXP) -> UnsafePointer<CChar>
    let makeCharacter: @convention(c) (UnsafePointer<CChar>, Int32, Int32) -> SEXP
    let attribute: @convention(c) (SEXP, SEXP) -> SEXP
    let setAttribute: @convention(c) (SEXP, SEXP, SEXP) -> SEXP
    let attributes: @convention(c) (SEXP) -> SEXP
    let isAltrep: @convention(c) (SEXP) -> Int32

    // External pointers and ALTREP
    let makeExternalPointer: @convention(c) (UnsafeMutableRawPointer?, SEXP, SEXP) -> SEXP
    let externalPointerAddress: @convention(c) (SEXP) -> UnsafeMutableRawPointer?
    let clearExternalPointer: @convention(c) (SEXP) -> Void
    let registerFinalizer: @convention(c) (SEXP, @convention(c) (SEXP) -> Void, Int32) -> Void
    let makeAltrealClass: @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, OpaquePointer?) -> OpaquePointer
    let makeAltintegerClass: @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, OpaquePointer?) -> OpaquePointer
    let newAltrep: @convention(c) (OpaquePointer, SEXP, SEXP) -> SEXP
    let altrepData1: @convention(c) (SEXP) -> SEXP
    let setLengthMethod: @convention(c) (OpaquePointer, @convention(c) (SEXP) -> Int) -> Void
    let setDataPointerMethod: @convention(c) (OpaquePointer, @convention(c) (SEXP, Int32) -> UnsafeMutableRawPointer?) -> Void
    let setDataPointerOrNullMethod: @convention(c) (OpaquePointer, @convention(c) (SEXP) -> UnsafeRawPointer?) -> Void
    let setRealElementMethod: @convention(c) (OpaquePointer, @convention(c) (SEXP, Int) -> Double) -> Void
    let setIntegerElementMethod: @convention(c) (OpaquePointer, @convention(c) (SEXP, Int) -> Int32) -> Void

    /// Loads `path` with its symbols global (packages R loads later link against them)
    /// and finds the functions and globals.
    init(path: String) throws {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL) else {
            throw RError("RuntimeNotLoadable", "cannot load \(path): \(String(cString: dlerror()))")
        }
        func symbol<T>(_ name: String, as type: T.Type = T.self) throws -> T {
            guard let address = dlsym(handle, name) else { throw RError("RuntimeNotLoadable", "\(path) has no \(name)") }
            return unsafeBitCast(address, to: type)
        }
        func variable<T>(_ name: String, as type: T.Type = T.self) throws -> UnsafeMutablePointer<T> {
            guard let address = dlsym(handle, name) else { throw RError("RuntimeNotLoadable", "\(path) has no \(name)") }
            return address.assumingMemoryBound(to: T.self)
        }
        initialize = try symbol("Rf_initialize_R")
        setupMainLoop = try symbol("setup_Rmainloop")
        signalHandlers = try variable("R_SignalHandlers")
        interactive = try variable("R_Interactive")
        stackStart = try variable("R_CStackStart")
        stackLimit = try variable("R_CStackLimit")
        stackDirection = try variable("R_CStackDir")
        interruptsPending = try variable("R_interrupts_pending")
        nilValue = try variable("R_NilValue")
        globalEnvironment = try variable("R_GlobalEnv")
        naString = try variable("R_NaString")
        namesSymbolAddress = try variable("R_NamesSymbol")
        dimSymbolAddress = try variable("R_DimSymbol")
        classSymbolAddress = try variable("R_ClassSymbol")
        levelsSymbolAddress = try variable("R_LevelsSymbol")
        rowNamesSymbolAddress = try variable("R_RowNamesSymbol")
        naInteger = try variable("R_NaInt")
        naReal = try variable("R_NaReal")
        tryEval = try symbol("R_tryEval")
        parseVector = try symbol("R_ParseVector")
        install = try symbol("Rf_install")
        lcons = try symbol("Rf_lcons")
        cons = try symbol("Rf_cons")
        setTag = try symbol("SET_TAG")
        newEnvironment = try symbol("R_NewEnv")
        defineVariable = try symbol("Rf_defineVar")
        findVariable = try symbol("Rf_findVar")
        protect = try symbol("Rf_protect")
        unprotect = try symbol("Rf_unprotect")
        preserve = try symbol("R_PreserveObject")
        release = try symbol("R_ReleaseObject")
        allocVector = try symbol("Rf_allocVector")
        typeOf = try symbol("TYPEOF")
        length = try symbol("Rf_xlength")
        real = try symbol("REAL")
        integer = try symbol("INTEGER")
        logical = try symbol("LOGICAL")
        stringElement = try symbol("STRING_ELT")
        setStringElement = try symbol("SET_STRING_ELT")
        vectorElement = try symbol("VECTOR_ELT")
        setVectorElement = try symbol("SET_VECTOR_ELT")
        characters = try symbol("R_CHAR")
        makeCharacter = try symbol("Rf_mkCharLenCE")
        attribute = try symbol("Rf_getAttrib")
        setAttribute = try symbol("Rf_setAttrib")
        attributes = try symbol("ATTRIB")
        isAltrep = try symbol("ALTREP")
        makeExternalPointer = try symbol("R_MakeExternalPtr")
        externalPointerAddress = try symbol("R_ExternalPtrAddr")
        clearExternalPointer = try symbol("R_ClearExternalPtr")
        registerFinalizer = try symbol("R_RegisterCFinalizerEx")
        makeAltrealClass = try symbol("R_make_altreal_class")
        makeAltintegerClass = try symbol("R_make_altinteger_class")
        newAltrep = try symbol("R_new_altrep")
        altrepData1 = try symbol("R_altrep_data1")
        setLengthMethod = try symbol("R_set_altrep_Length_method")
        setDataPointerMethod = try symbol("R_set_altvec_Dataptr_method")
        setDataPointerOrNullMethod = try symbol("R_set_altvec_Dataptr_or_null_method")
        setRealElementMethod = try symbol("R_set_altreal_Elt_method")
        setIntegerElementMethod = try symbol("R_set_altinteger_Elt_method")
    }

    /// `NULL`.
    var null: SEXP { nilValue.pointee }
    /// The global environment.
    var globalEnv: SEXP { globalEnvironment.pointee }
    /// The missing string.
    var missingString: SEXP { naString.pointee }
    var namesSymbol: SEXP { namesSymbolAddress.pointee }
    var dimSymbol: SEXP { dimSymbolAddress.pointee }
    var classSymbol: SEXP { classSymbolAddress.pointee }
    var levelsSymbol: SEXP { levelsSymbolAddress.pointee }
    var rowNamesSymbol: SEXP { rowNamesSymbolAddress.pointee }
}

/// The address of an R object, as a number that may cross threads (only R's thread
/// turns it back into an object).
func address(of object: SEXP) -> UInt {
    UInt(bitPattern: Int(bitPattern: object))
}

/// The R object at `address`.
func object(at address: UInt) -> SEXP {
    SEXP(bitPattern: address)!
}

/// R's object types (`SEXPTYPE`), those Kapsel reads or makes.
enum RType: Int32 {
    case null = 0, symbol = 1, pairList = 2, closure = 3, environment = 4, language = 6, special = 7, builtin = 8, character = 9
    case logical = 10, integer = 13, double = 14, complex = 15, string = 16, list = 19, externalPointer = 22, raw = 24, s4 = 25

    var code: UInt32 { UInt32(rawValue) }
}
