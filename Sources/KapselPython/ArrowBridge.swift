import CKapselArrow
import Kapsel
import KapselArrow

/// `SharedTable`s crossing into and out of the embedded interpreter through the Arrow C
/// Data Interface, as pyarrow record batches. Into Python: the table is exported (no
/// copy) and pyarrow imports it; the shared memory stays alive until pyarrow's release
/// callback runs. Out of Python: pyarrow exports a batch into structs Swift lends, and
/// Swift copies its columns once into a new `SharedTable` (pyarrow's buffers are not
/// shared memory), then releases pyarrow's export.
enum ArrowBridge {
    /// A pair of C Data Interface structs, by address (kept as integers to be `Sendable`).
    private struct Structs: Sendable {
        let arrayAddress: Int
        let schemaAddress: Int
        var array: UnsafeMutablePointer<ArrowArray> { UnsafeMutablePointer(bitPattern: arrayAddress)! }
        var schema: UnsafeMutablePointer<ArrowSchema> { UnsafeMutablePointer(bitPattern: schemaAddress)! }
    }

    private static let structs = TokenRegistry<Structs>()

    /// Fresh empty structs for an export; returns their token.
    static func lendStructs() -> Int64 {
        let array = UnsafeMutablePointer<ArrowArray>.allocate(capacity: 1)
        let schema = UnsafeMutablePointer<ArrowSchema>.allocate(capacity: 1)
        array.initialize(to: ArrowArray())
        schema.initialize(to: ArrowSchema())
        return structs.lend(Structs(arrayAddress: Int(bitPattern: array), schemaAddress: Int(bitPattern: schema)))
    }

    /// Frees the structs of `token` (their contents moved or released already).
    static func free(_ token: Int64) {
        guard let pair = structs.take(token) else { return }
        pair.array.deallocate()
        pair.schema.deallocate()
    }

    /// Exports `table` into fresh structs; returns their token (pyarrow moves them).
    static func export(_ table: SharedTable) -> Int64 {
        let token = lendStructs()
        let pair = structs.value(token)!
        table.exportArrow(array: pair.array, schema: pair.schema)
        return token
    }

    /// The batch pyarrow exported into the structs of `token`, copied into a `SharedTable`.
    static func importTable(_ token: Int64) throws -> SharedTable {
        guard let pair = structs.value(token) else { throw PythonError(type: "KapselError", message: "unknown Arrow export \(token)") }
        defer { free(token) }
        let batch = try ImportedArrowArray.take(array: pair.array, schema: pair.schema)
        guard batch.isStructure else { throw PythonError(type: "TypeError", message: "pyarrow exported an array, not a record batch") }
        return try SharedTable(batch.columns.map(copy))
    }

    /// A column of an imported batch, copied into shared memory.
    private static func copy(_ column: ImportedArrowArray) throws -> SharedColumn {
        let rows = 0..<column.length
        func primitive<T: ArrowPrimitive>(_ type: T.Type) throws -> SharedColumn {
            try .primitive(column.name, rows.map { column.value($0, as: T.self) })
        }
        switch column.arrowType {
        case .int8: return try primitive(Int8.self)
        case .int16: return try primitive(Int16.self)
        case .int32: return try primitive(Int32.self)
        case .int64: return try primitive(Int64.self)
        case .uint8: return try primitive(UInt8.self)
        case .uint16: return try primitive(UInt16.self)
        case .uint32: return try primitive(UInt32.self)
        case .uint64: return try primitive(UInt64.self)
        case .float32: return try primitive(Float.self)
        case .float64: return try primitive(Double.self)
        case .bool: return try .bool(column.name, rows.map { column.bool($0) })
        case .utf8: return try .utf8(column.name, rows.map { column.string($0) })
        }
    }

    /// Tables Kapsel exported that pyarrow has not released yet.
    static var outstanding: Int { ArrowExport.outstanding }

    static let lendStructsForPython: @convention(c) () -> Int64 = { lendStructs() }
    static let arrayAddress: @convention(c) (Int64) -> Int = { structs.value($0)?.arrayAddress ?? 0 }
    static let schemaAddress: @convention(c) (Int64) -> Int = { structs.value($0)?.schemaAddress ?? 0 }
    static let freeStructs: @convention(c) (Int64) -> Void = { free($0) }
}
