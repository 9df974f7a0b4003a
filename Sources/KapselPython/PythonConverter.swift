import Kapsel

/// Builds the embedded interpreter's objects from `PythonValue`s and reads its answers
/// back, through the C API, with the GIL held: no text format between Swift and Python.
///
/// What is not plain data crosses as the helper's `_Ref` tuples (see `PythonHelper`):
/// shared memory lent to numpy, Arrow exports, objects kept in the daemon.
///
/// `@unchecked Sendable`: its stored properties are immutable pointers to objects the
/// interpreter keeps for its whole life (the helper's `_Ref` class), used only with the GIL held.
struct PythonConverter: @unchecked Sendable {
    typealias Object = PythonLibrary.Object

    let library: PythonLibrary
    /// The helper's `_Ref` class.
    let referenceType: Object

    // MARK: Swift to Python

    /// A new reference to the interpreter's value of `value`; `objectIDs` has the id of
    /// each `PythonObject` in it (found beforehand, as reading one is asynchronous).
    func object(for value: PythonValue, objectIDs: [ObjectIdentifier: Int]) throws -> Object {
        switch value {
        case .none:
            library.incrementReference(library.none)
            return library.none
        case .bool(let flag):
            return try made(library.boolFromInt(flag ? 1 : 0))
        case .int(let number):
            return try made(library.integerFromInt64(Int64(number)))
        case .double(let number):
            return try made(library.floatFromDouble(number))
        case .string(let text):
            return try string(text)
        case .list(let items):
            let list = try made(library.newList(items.count))
            for (index, item) in items.enumerated() {
                do {
                    _ = library.setListItem(list, index, try object(for: item, objectIDs: objectIDs))
                } catch {
                    library.decrementReference(list)
                    throw error
                }
            }
            return list
        case .dict(let entries):
            let dictionary = try made(library.newDictionary())
            do {
                for (key, item) in entries {
                    let keyObject = try string(key)
                    defer { library.decrementReference(keyObject) }
                    let itemObject = try object(for: item, objectIDs: objectIDs)
                    defer { library.decrementReference(itemObject) }
                    guard library.setDictionaryItem(dictionary, keyObject, itemObject) == 0 else { throw failure("cannot fill a dict") }
                }
            } catch {
                library.decrementReference(dictionary)
                throw error
            }
            return dictionary
        case .array(let array):
            let token = SharedMemoryBridge.lend(array.buffer)
            return try reference([
                .string("array"), .int(Int(token)), .string(array.elementType), .list(array.shape.map(PythonValue.int)),
                .list(array.strides.map(PythonValue.int)), .int(SharedMemoryBridge.address(of: array.buffer)), .int(array.buffer.count),
            ])
        case .table(let table):
            return try reference([.string("table"), .int(Int(ArrowBridge.export(table)))])
        case .object(let handle):
            return try reference([.string("object"), .int(objectIDs[ObjectIdentifier(handle)] ?? -1)])
        }
    }

    /// A new reference to a `str`.
    func string(_ text: String) throws -> Object {
        try made(text.withCString { library.stringFromUTF8($0, text.utf8.count) })
    }

    /// A new reference to a tuple of `items`, each converted.
    func tuple(_ items: [PythonValue], objectIDs: [ObjectIdentifier: Int] = [:]) throws -> Object {
        let tuple = try made(library.newTuple(items.count))
        for (index, item) in items.enumerated() {
            do {
                _ = library.setTupleItem(tuple, index, try object(for: item, objectIDs: objectIDs))
            } catch {
                library.decrementReference(tuple)
                throw error
            }
        }
        return tuple
    }

    /// A `_Ref` of `items`.
    private func reference(_ items: [PythonValue]) throws -> Object {
        let fields = try tuple(items)
        defer { library.decrementReference(fields) }
        let arguments = try made(library.newTuple(1))
        defer { library.decrementReference(arguments) }
        library.incrementReference(fields)
        _ = library.setTupleItem(arguments, 0, fields)
        return try made(library.call(referenceType, arguments, nil))
    }

    // MARK: Python to Swift

    /// The value of `object` (borrowed): plain data converted, `_Ref`s taken back —
    /// shared memory and tables into Swift, objects as handles, actors of `system`.
    func value(of object: Object, system: KapselActorSystem) throws -> PythonValue {
        if object == library.none { return .none }
        guard let type = library.typeOf(object) else { throw failure("an object without a type") }
        // The type lives as long as the object: the reference taken is dropped at once.
        library.decrementReference(type)
        switch type {
        case library.boolType:
            return .bool(object == library.true)
        case library.integerType:
            var overflow: Int32 = 0
            let number = library.integerAsInt64(object, &overflow)
            guard overflow == 0, let value = Int(exactly: number) else { throw failure("an int beyond 64 bits") }
            return .int(value)
        case library.floatType:
            return .double(library.floatAsDouble(object))
        case library.stringType:
            return .string(try text(of: object))
        case library.listType:
            return .list(try (0..<library.listSize(object)).map { try value(of: try item(library.listItem(object, $0)), system: system) })
        case library.tupleType:
            return .list(try (0..<library.tupleSize(object)).map { try value(of: try item(library.tupleItem(object, $0)), system: system) })
        case library.dictionaryType:
            var entries: [String: PythonValue] = [:]
            var position = 0
            var key: Object?
            var item: Object?
            while library.nextDictionaryItem(object, &position, &key, &item) != 0 {
                guard let key, let item else { continue }
                entries[try text(of: key)] = try value(of: item, system: system)
            }
            return .dict(entries)
        case referenceType:
            return try referenced(object, system: system)
        default:
            throw failure("an object of a type the helper does not send")
        }
    }

    /// What a `_Ref` refers to, taken back.
    private func referenced(_ reference: Object, system: KapselActorSystem) throws -> PythonValue {
        let fields = try (0..<library.tupleSize(reference)).map { try value(of: try item(library.tupleItem(reference, $0)), system: system) }
        switch (fields.first?.string, fields.count) {
        case ("object", 3):
            guard let id = fields[1].int, let type = fields[2].string else { break }
            return .object(PythonObject(actorSystem: system, configuration: PythonObject.Configuration(id: id, type: type)))
        case ("array", 5):
            guard let token = fields[1].int, let elementType = fields[2].string, let shape = fields[3].list?.compactMap(\.int),
                  let strides = fields[4].list?.compactMap(\.int), let buffer = SharedMemoryBridge.take(Int64(token)) else { break }
            return .array(PythonArray(elementType: elementType, shape: shape, strides: strides, buffer: buffer))
        case ("table", 2):
            guard let token = fields[1].int else { break }
            return .table(try ArrowBridge.importTable(Int64(token)))
        default:
            break
        }
        throw failure("a malformed reference from the helper: \(fields)")
    }

    private func text(of object: Object) throws -> String {
        var length = 0
        guard let bytes = library.stringAsUTF8(object, &length) else { throw failure("a str that is not UTF-8") }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    private func item(_ object: Object?) throws -> Object {
        guard let object else { throw failure("a missing item") }
        return object
    }

    /// `object`, or the error the interpreter reports for a call that made none.
    private func made(_ object: Object?) throws -> Object {
        guard let object else { throw failure("the interpreter could not make an object") }
        return object
    }

    /// A conversion failure; the interpreter's pending error, if any, is dropped.
    private func failure(_ what: String) -> PythonError {
        if library.errorOccurred() != nil { library.clearError() }
        return PythonError(type: "KapselError", message: "cannot convert \(what)")
    }
}
