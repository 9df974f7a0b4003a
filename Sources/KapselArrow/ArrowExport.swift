import CKapselArrow
import KapselSharedMemory
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Exporting Kapsel columns and tables through the Arrow C Data Interface, without
/// copying: the exported buffers point into shared memory, which stays alive until the
/// consumer calls the release callback.
///
/// ```swift
/// var array = ArrowArray(), schema = ArrowSchema()
/// try table.exportArrow(array: &array, schema: &schema)
/// // hand &array and &schema to a consumer (PyArrow, DuckDB, ...), which releases them
/// ```
///
/// Follows the specification's rules: each struct's bookkeeping lives in its
/// `private_data` (a retained box, no global table); the release callback releases the
/// children that have not been moved out, frees what the struct owns, and sets
/// `release` to NULL. Exported memory is frozen: Swift writes copy first.
public enum ArrowExport {
    private static let live = Atomic<Int>(0)
    private static let releases = Atomic<Int>(0)

    /// Exported structs (arrays and schemas, children included) not yet released.
    public static var outstanding: Int { live.load(ordering: .relaxed) }
    /// Release callbacks run so far on live structs (for checking each runs once).
    public static var releaseCount: Int { releases.load(ordering: .relaxed) }

    fileprivate static func exported() { live.add(1, ordering: .relaxed) }
    fileprivate static func released() {
        live.subtract(1, ordering: .relaxed)
        releases.add(1, ordering: .relaxed)
    }
}

extension SharedColumn {
    /// Exports the column into `array` and `schema` (which must be unused or released).
    public func exportArrow(array: UnsafeMutablePointer<ArrowArray>, schema: UnsafeMutablePointer<ArrowSchema>) {
        array.initialize(to: exportedArray())
        schema.initialize(to: exportedSchema(format: arrowType.format, name: name, nullable: true, children: []))
    }

    fileprivate func exportedArray() -> ArrowArray {
        for buffer in buffers { buffer?.storage.freeze() }
        let pointers: [UnsafeRawPointer?] = buffers.map { buffer in
            buffer.map { UnsafeRawPointer($0.storage.segment.payload + $0.offset) }
        }
        return makeArray(length: length, nullCount: nullCount, buffers: pointers, keepAlive: buffers.compactMap { $0 }, children: [])
    }
}

extension SharedTable {
    /// Exports the table as a struct array (a record batch: `RecordBatch._import_from_c`
    /// in PyArrow) into `array` and `schema`.
    public func exportArrow(array: UnsafeMutablePointer<ArrowArray>, schema: UnsafeMutablePointer<ArrowSchema>) {
        array.initialize(to: makeArray(length: rowCount, nullCount: 0, buffers: [nil], keepAlive: [], children: columns.map { $0.exportedArray() }))
        let childSchemas = columns.map { exportedSchema(format: $0.arrowType.format, name: $0.name, nullable: true, children: []) }
        schema.initialize(to: exportedSchema(format: "+s", name: "", nullable: false, children: childSchemas))
    }
}

extension SharedArray where Element: ArrowPrimitive {
    /// Exports the array as an Arrow array named `name`, without copying.
    public func exportArrow(name: String = "", array: UnsafeMutablePointer<ArrowArray>, schema: UnsafeMutablePointer<ArrowSchema>) throws {
        try SharedColumn(name: name, values: self).exportArrow(array: array, schema: schema)
    }
}

/// Heap copies of a struct's children and the pointer array listing them, as the C
/// Data Interface lays them out; owned by the parent's box.
private struct ChildList<Structure> {
    let pointers: UnsafeMutablePointer<UnsafeMutablePointer<Structure>?>?
    let count: Int

    init(_ children: [Structure]) {
        count = children.count
        guard !children.isEmpty else {
            pointers = nil
            return
        }
        let list = UnsafeMutablePointer<UnsafeMutablePointer<Structure>?>.allocate(capacity: children.count)
        for (index, child) in children.enumerated() {
            let structure = UnsafeMutablePointer<Structure>.allocate(capacity: 1)
            structure.initialize(to: child)
            list[index] = structure
        }
        pointers = list
    }

    func deallocate() {
        guard let pointers else { return }
        for index in 0..<count { pointers[index]?.deallocate() }
        pointers.deallocate()
    }
}

/// What one exported `ArrowArray` owns: the pointer arrays it hands out, the structs
/// of its children, and references that keep the shared memory alive.
private final class ExportedArrayBox {
    let keepAlive: [SharedBuffer]
    let buffers: UnsafeMutablePointer<UnsafeRawPointer?>
    let bufferCount: Int
    let children: ChildList<ArrowArray>

    init(keepAlive: [SharedBuffer], buffers: [UnsafeRawPointer?], children: [ArrowArray]) {
        self.keepAlive = keepAlive
        bufferCount = buffers.count
        self.buffers = .allocate(capacity: max(buffers.count, 1))
        self.buffers.initialize(from: buffers, count: buffers.count)
        self.children = ChildList(children)
        ArrowExport.exported()
    }

    deinit {
        buffers.deallocate()
        children.deallocate()
    }
}

private func makeArray(length: Int, nullCount: Int, buffers: [UnsafeRawPointer?], keepAlive: [SharedBuffer], children: [ArrowArray]) -> ArrowArray {
    let box = ExportedArrayBox(keepAlive: keepAlive, buffers: buffers, children: children)
    var array = ArrowArray()
    array.length = Int64(length)
    array.null_count = Int64(nullCount)
    array.offset = 0
    array.n_buffers = Int64(box.bufferCount)
    array.n_children = Int64(box.children.count)
    array.buffers = UnsafeMutablePointer(mutating: UnsafeRawPointer(box.buffers).assumingMemoryBound(to: UnsafeRawPointer?.self))
    array.children = box.children.pointers
    array.dictionary = nil
    array.release = releaseExportedArray
    array.private_data = Unmanaged.passRetained(box).toOpaque()
    return array
}

/// The release callback of every exported array.
private let releaseExportedArray: @convention(c) (UnsafeMutablePointer<ArrowArray>?) -> Void = { array in
    guard let array, array.pointee.release != nil else { return }
    if let children = array.pointee.children {
        for index in 0..<Int(array.pointee.n_children) {
            // A child the consumer moved out has `release` NULL here: its new owner releases it.
            if let child = children[index], let release = child.pointee.release { release(child) }
        }
    }
    array.pointee.release = nil
    Unmanaged<ExportedArrayBox>.fromOpaque(array.pointee.private_data!).release()
    ArrowExport.released()
}

/// What one exported `ArrowSchema` owns: its strings and its children's structs.
private final class ExportedSchemaBox {
    let format: UnsafeMutablePointer<CChar>
    let name: UnsafeMutablePointer<CChar>
    let children: ChildList<ArrowSchema>

    init(format: String, name: String, children: [ArrowSchema]) {
        self.format = strdup(format)
        self.name = strdup(name)
        self.children = ChildList(children)
        ArrowExport.exported()
    }

    deinit {
        free(format)
        free(name)
        children.deallocate()
    }
}

private func exportedSchema(format: String, name: String, nullable: Bool, children: [ArrowSchema]) -> ArrowSchema {
    let box = ExportedSchemaBox(format: format, name: name, children: children)
    var schema = ArrowSchema()
    schema.format = UnsafePointer(box.format)
    schema.name = UnsafePointer(box.name)
    schema.metadata = nil
    schema.flags = nullable ? Int64(ARROW_FLAG_NULLABLE) : 0
    schema.n_children = Int64(box.children.count)
    schema.children = box.children.pointers
    schema.dictionary = nil
    schema.release = releaseExportedSchema
    schema.private_data = Unmanaged.passRetained(box).toOpaque()
    return schema
}

/// The release callback of every exported schema.
private let releaseExportedSchema: @convention(c) (UnsafeMutablePointer<ArrowSchema>?) -> Void = { schema in
    guard let schema, schema.pointee.release != nil else { return }
    if let children = schema.pointee.children {
        for index in 0..<Int(schema.pointee.n_children) {
            if let child = children[index], let release = child.pointee.release { release(child) }
        }
    }
    schema.pointee.release = nil
    Unmanaged<ExportedSchemaBox>.fromOpaque(schema.pointee.private_data!).release()
    ArrowExport.released()
}
