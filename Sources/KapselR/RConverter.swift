import Kapsel
import KapselArrow

/// Turns `RValue`s into R objects and R objects into `RValue`s, and runs code through the
/// helper. Made for one job on R's thread and used only there.
///
/// Garbage collection can run at any allocation, so every R object made here is
/// protected until it is held by something R sees (a vector, an environment, an
/// attribute); `protect` counts what to unprotect.
final class RConverter {
    /// Numeric vectors at least this long come back as tensors in shared memory, like
    /// those with dimensions; shorter ones as Swift arrays.
    static let tensorThreshold = 4096

    let library: RLibrary
    /// The actor system handles of R objects are made in (nil: no handles, for Kapsel's own setup).
    let system: KapselActorSystem?
    /// The objects behind handles the host holds, by address.
    let objects: [KapselActorID: UInt]
    /// Objects this job put behind new handles.
    private(set) var made: [KapselActorID: UInt] = [:]

    init(library: RLibrary, system: KapselActorSystem?, objects: [KapselActorID: UInt]) {
        self.library = library
        self.system = system
        self.objects = objects
    }

    // MARK: Running code

    /// Parses `source` and evaluates it in the global environment, as R's top level
    /// would (for Kapsel's own code, which does not fail); returns the last value.
    func evaluateSource(_ source: String) throws -> SEXP {
        let text = library.protect(string(source))
        defer { library.unprotect(1) }
        var status: Int32 = 0
        let parsed = library.protect(library.parseVector(text, -1, &status, library.null))
        defer { library.unprotect(1) }
        guard status == 1 else { throw RError("ParseError", "Kapsel's R code does not parse: \(source)") }
        var value = library.null
        for index in 0..<library.length(parsed) {
            var failed: Int32 = 0
            guard let result = library.tryEval(library.vectorElement(parsed, index), library.globalEnv, &failed), failed == 0 else {
                throw RError("RError", "Kapsel's R code failed (R printed why): \(source)")
            }
            value = result
        }
        return value
    }

    /// Runs `text` in `scope` through `helper` (with `bindings` in a fresh environment
    /// inside `scope`); returns its value read as an `RValue`, the warnings, and the
    /// objects put behind handles. Throws R's error.
    func run(_ text: String, in scope: SEXP, bindings: [(String, RValue)]?, helper: SEXP) throws -> (RValue, [String], [KapselActorID: UInt]) {
        let (value, warnings) = try evaluate(text, in: scope, bindings: bindings, helper: helper)
        defer { library.unprotect(1) }
        return (try read(value), warnings, made)
    }

    /// Runs `text` through the helper; returns its value, protected (the caller
    /// unprotects it), and the warnings.
    private func evaluate(_ text: String, in scope: SEXP, bindings: [(String, RValue)]?, helper: SEXP) throws -> (SEXP, [String]) {
        var protected: Int32 = 0
        defer { library.unprotect(protected) }
        func protect(_ object: SEXP) -> SEXP {
            protected += 1
            return library.protect(object)
        }
        var environment = scope
        if let bindings {
            environment = protect(library.newEnvironment(scope, 1, 0))
            for (name, value) in bindings {
                let made = protect(try self.make(value, helper: helper))
                library.defineVariable(library.install(name), made, environment)
            }
        }
        let capture = library.findVariable(library.install("capture"), helper)
        let arguments = protect(library.cons(protect(string(text)), protect(library.cons(environment, library.null))))
        let call = protect(library.lcons(capture, arguments))
        var failed: Int32 = 0
        guard let outcome = library.tryEval(call, library.globalEnv, &failed), failed == 0 else {
            throw RError("RError", "Kapsel's R helper failed (R printed why)")
        }
        _ = protect(outcome)
        let fields = try namedElements(outcome)
        let warnings = try strings(fields["warnings"] ?? library.null).map { $0 ?? "NA" }
        guard let ok = fields["ok"], library.logical(ok)[0] == 1 else {
            throw RError(
                try strings(fields["class"] ?? library.null).first.flatMap { $0 } ?? "RError",
                try strings(fields["message"] ?? library.null).first.flatMap { $0 } ?? "",
                call: try strings(fields["call"] ?? library.null).first.flatMap { $0 } ?? "",
                traceback: try strings(fields["trace"] ?? library.null).map { $0 ?? "" }
            )
        }
        let value = fields["value"] ?? library.null
        // Protected again for the caller at once: nothing allocates in between, so the
        // collector cannot run.
        library.unprotect(protected)
        protected = 0
        return (library.protect(value), warnings)
    }

    /// The elements of a list by name.
    private func namedElements(_ list: SEXP) throws -> [String: SEXP] {
        let names = try strings(library.attribute(list, library.namesSymbol))
        var elements: [String: SEXP] = [:]
        for (index, name) in names.enumerated() {
            if let name { elements[name] = library.vectorElement(list, index) }
        }
        return elements
    }

    // MARK: Values into R

    /// `value` as an R object (unprotected).
    func make(_ value: RValue, helper: SEXP) throws -> SEXP {
        switch value {
        case .null:
            return library.null
        case .logical(let values, let names):
            return named(vector(.logical, values) { $0.map { $0 ? 1 : 0 } ?? library.naInteger.pointee }, names)
        case .integer(let values, let names):
            return named(vector(.integer, values) { $0 ?? library.naInteger.pointee }, names)
        case .double(let values, let names):
            return named(vector(.double, values) { $0 ?? library.naReal.pointee }, names)
        case .character(let values, let names):
            return named(strings(values), names)
        case .factor(let codes, let levels):
            let factor = library.protect(vector(.integer, codes) { $0 ?? library.naInteger.pointee })
            defer { library.unprotect(1) }
            setAttribute(factor, library.levelsSymbol, strings(levels))
            setAttribute(factor, library.classSymbol, string("factor"))
            return factor
        case .list(let values, let names):
            let list = library.protect(library.allocVector(RType.list.code, values.count))
            defer { library.unprotect(1) }
            for (index, element) in values.enumerated() {
                _ = library.setVectorElement(list, index, try make(element, helper: helper))
            }
            return named(list, names)
        case .doubles(let tensor):
            return try self.tensor(tensor, kind: .double)
        case .integers(let tensor):
            return try self.tensor(tensor, kind: .integer)
        case .table(let table):
            return try frame(table)
        case .object(let handle):
            guard let address = objects[handle.id] else {
                throw RError("UnknownObject", "\(handle.id) is not an object of this daemon's R (it was released, or lives in another daemon)")
            }
            return object(at: address)
        case .formula(let text):
            let (formula, _) = try evaluate(text, in: library.globalEnv, bindings: nil, helper: helper)
            library.unprotect(1)
            return formula
        case .call(let function, let arguments):
            guard RCode.isFunctionName(function) else { throw RError("NotAFunctionName", "'\(function)' is not the name of a function") }
            let (call, bindings) = RConverter.call(function, arguments)
            let (value, _) = try evaluate(call, in: library.globalEnv, bindings: bindings, helper: helper)
            library.unprotect(1)
            return value
        }
    }

    /// The code of a call of `function` with `arguments`, each bound to a variable
    /// (`.x1`, `.x2`, ...) so that R's messages show the call, not the data.
    static func call(_ function: String, _ arguments: [RArgument]) -> (String, [(String, RValue)]) {
        var parts: [String] = []
        var bindings: [(String, RValue)] = []
        for (index, argument) in arguments.enumerated() {
            let variable = ".x\(index + 1)"
            bindings.append((variable, argument.value))
            parts.append(argument.name.map { "\(RCode.name($0)) = \(variable)" } ?? variable)
        }
        return ("\(function)(\(parts.joined(separator: ", ")))", bindings)
    }

    /// A new vector of `type` filled from `values` (unprotected).
    private func vector<Value, Stored>(_ type: RType, _ values: [Value], _ convert: (Value) -> Stored) -> SEXP {
        let vector = library.allocVector(type.code, values.count)
        let storage: UnsafeMutableRawPointer = switch type {
        case .double: UnsafeMutableRawPointer(library.real(vector))
        case .logical: UnsafeMutableRawPointer(library.logical(vector))
        default: UnsafeMutableRawPointer(library.integer(vector))
        }
        let elements = storage.bindMemory(to: Stored.self, capacity: values.count)
        for (index, value) in values.enumerated() { elements[index] = convert(value) }
        return vector
    }

    /// A character vector of `values` (nil is `NA`), unprotected.
    func strings(_ values: [String?]) -> SEXP {
        let vector = library.protect(library.allocVector(RType.string.code, values.count))
        defer { library.unprotect(1) }
        for (index, value) in values.enumerated() {
            library.setStringElement(vector, index, value.map(character) ?? library.missingString)
        }
        return vector
    }

    /// A character vector of one string, unprotected.
    func string(_ value: String) -> SEXP {
        strings([value])
    }

    /// An R string (`CHARSXP`) in UTF-8.
    private func character(_ text: String) -> SEXP {
        var text = text
        return text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { characters in
                guard let start = characters.baseAddress else { return library.makeCharacter("", 0, 1) }
                return library.makeCharacter(start, Int32(characters.count), 1)
            }
        }
    }

    /// `vector` with `names` set, if there are any.
    private func named(_ vector: SEXP, _ names: [String]?) -> SEXP {
        guard let names else { return vector }
        let protected = library.protect(vector)
        defer { library.unprotect(1) }
        setAttribute(protected, library.namesSymbol, strings(names))
        return protected
    }

    /// Sets attribute `name` of `object` to `value` (which it then holds).
    func setAttribute(_ object: SEXP, _ name: SEXP, _ value: SEXP) {
        let held = library.protect(value)
        _ = library.setAttribute(object, name, held)
        library.unprotect(1)
    }

    // MARK: Values out of R

    /// `object` as an `RValue`: plain data converted, the rest behind a new handle.
    func read(_ object: SEXP) throws -> RValue {
        let type = library.typeOf(object)
        if type == RType.null.rawValue { return .null }
        let classAttribute = library.attribute(object, library.classSymbol)
        let classes = classAttribute == library.null ? [] : try strings(classAttribute).compactMap { $0 }
        let hasDimensions = library.attribute(object, library.dimSymbol) != library.null
        switch type {
        case RType.integer.rawValue where classes == ["factor"]:
            let levels = try strings(library.attribute(object, library.levelsSymbol)).map { $0 ?? "NA" }
            let codes = integers(object)
            return .factor(codes.map { $0 == RMissing.integer ? nil : $0 }, levels: levels)
        case RType.list.rawValue where classes.contains("data.frame"):
            if let converted = try? table(object) { return .table(converted) }
        case _ where !classes.isEmpty:
            break
        case RType.double.rawValue where hasDimensions || library.length(object) >= Self.tensorThreshold:
            return .doubles(try tensor(object, as: Double.self))
        case RType.integer.rawValue where hasDimensions || library.length(object) >= Self.tensorThreshold:
            return .integers(try tensor(object, as: Int32.self))
        case _ where hasDimensions:
            break
        case RType.double.rawValue:
            let values = UnsafeBufferPointer(start: library.real(object), count: library.length(object))
            return .double(values.map { RMissing.isNA($0) ? nil : $0 }, names: try names(object))
        case RType.integer.rawValue:
            return .integer(integers(object).map { $0 == RMissing.integer ? nil : $0 }, names: try names(object))
        case RType.logical.rawValue:
            let values = UnsafeBufferPointer(start: library.logical(object), count: library.length(object))
            return .logical(values.map { $0 == RMissing.integer ? nil : $0 != 0 }, names: try names(object))
        case RType.string.rawValue:
            return .character(try strings(object), names: try names(object))
        case RType.list.rawValue:
            let values = try (0..<library.length(object)).map { try read(library.vectorElement(object, $0)) }
            return .list(values, names: try names(object))
        default:
            break
        }
        return handle(object, classes: classes)
    }

    /// `object` behind a new handle (preserved until the host drops it).
    private func handle(_ object: SEXP, classes: [String]) -> RValue {
        guard let system else { return .null }
        library.preserve(object)
        let type = classes.isEmpty ? RType(rawValue: library.typeOf(object)).map { "\($0)" } ?? "object" : classes.joined(separator: "/")
        let handle = RObject(actorSystem: system, configuration: RObject.Configuration(type: type))
        made[handle.id] = address(of: object)
        return .object(handle)
    }

    private func integers(_ object: SEXP) -> [Int32] {
        Array(UnsafeBufferPointer(start: library.integer(object), count: library.length(object)))
    }

    /// The elements of a character vector (nil for `NA`).
    func strings(_ object: SEXP) throws -> [String?] {
        guard object != library.null else { return [] }
        guard library.typeOf(object) == RType.string.rawValue else { throw RError("NotText", "expected a character vector") }
        return (0..<library.length(object)).map { index in
            let element = library.stringElement(object, index)
            return element == library.missingString ? nil : String(cString: library.characters(element))
        }
    }

    private func names(_ object: SEXP) throws -> [String]? {
        let names = library.attribute(object, library.namesSymbol)
        return names == library.null ? nil : try strings(names).map { $0 ?? "" }
    }
}
