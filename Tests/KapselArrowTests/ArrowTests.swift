import CKapselArrow
#if canImport(Glibc)
import Glibc
#endif
import KapselArrowInterop
import Testing
@testable import KapselArrow
@testable import KapselSharedMemory

/// One suite, run serially: the export counters are global to the process.
@Suite("Arrow C Data Interface", .serialized)
struct ArrowTests {
    @Test func exportedTablesImportBackWithEveryValueAndNull() throws {
        let baseline = ArrowExport.outstanding
        let releasesBefore = ArrowExport.releaseCount
        var array = ArrowArray()
        var schema = ArrowSchema()
        let table = try ArrowReference.table()
        table.exportArrow(array: &array, schema: &schema)
        // One struct array with 14 children, and as many schemas.
        #expect(ArrowExport.outstanding - baseline == 30)
        do {
            let imported = try ImportedArrowArray.take(array: &array, schema: &schema)
            #expect(array.release == nil && schema.release == nil, "taking moves the structs")
            #expect(imported.isStructure && imported.length == 5)
            let columns = try imported.columns
            #expect(columns.map(\.name) == table.columns.map(\.name))
            for column in columns {
                #expect(ArrowReference.mismatches(in: column, named: column.name).isEmpty)
            }
            #expect(try imported.column(named: "name")?.nullCount == 1)
            #expect(try imported.column(named: "shared")?.nullCount == 0)
        }
        #expect(ArrowExport.outstanding == baseline)
        // Each of the 30 release callbacks ran exactly once.
        #expect(ArrowExport.releaseCount - releasesBefore == 30)
    }

    @Test func theSharedColumnsOwnValuesAreTheOnesExported() throws {
        let values = try SharedArray<Double>([1, 2, 3])
        var array = ArrowArray()
        var schema = ArrowSchema()
        try values.exportArrow(name: "x", array: &array, schema: &schema)
        let address = values.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress!) }
        #expect(array.buffers[1] == address)
        #expect(array.buffers[0] == nil && array.null_count == 0)
        #expect(String(cString: schema.format) == "g" && String(cString: schema.name) == "x")
        // Exported memory is frozen: a Swift write copies first, the consumer's view never changes.
        var writable = values
        writable[0] = 100
        #expect(UnsafeRawPointer(array.buffers[1]!).load(as: Double.self) == 1)
        array.release!(&array)
        schema.release!(&schema)
        #expect(array.release == nil && schema.release == nil)
    }

    @Test func aMovedStructIsReleasedByItsNewOwnerOnly() throws {
        let baseline = ArrowExport.outstanding
        var original = ArrowArray()
        var schema = ArrowSchema()
        try SharedColumn.primitive("v", [Int32(1), nil]).exportArrow(array: &original, schema: &schema)
        // Move: copy the struct, mark the source released.
        var moved = original
        original.release = nil
        #expect(ArrowExport.outstanding - baseline == 2)
        moved.release!(&moved)
        #expect(moved.release == nil)
        #expect(ArrowExport.outstanding - baseline == 1)
        schema.release!(&schema)
        #expect(ArrowExport.outstanding == baseline)
    }

    @Test func aChildMovedOutOfItsParentOutlivesIt() throws {
        let baseline = ArrowExport.outstanding
        var array = ArrowArray()
        var schema = ArrowSchema()
        try ArrowReference.table().exportArrow(array: &array, schema: &schema)
        // Move the "name" column (child 11) out, as a consumer may.
        let child = array.children[11]!
        var moved = child.pointee
        child.pointee.release = nil
        array.release!(&array)
        schema.release!(&schema)
        // Everything but the moved child is gone; it still reads its strings.
        #expect(ArrowExport.outstanding - baseline == 1)
        let offsets = moved.buffers[1]!.assumingMemoryBound(to: Int32.self)
        let data = moved.buffers[2]!.assumingMemoryBound(to: UInt8.self)
        #expect(String(decoding: UnsafeBufferPointer(start: data + Int(offsets[3]), count: Int(offsets[4] - offsets[3])), as: UTF8.self) == "ünïcødé ✓")
        moved.release!(&moved)
        #expect(ArrowExport.outstanding == baseline)
    }

    @Test func importRefusesWhatItCannotRead() throws {
        var array = ArrowArray()
        var schema = ArrowSchema()
        #expect(throws: ArrowError.self) { try ImportedArrowArray.take(array: &array, schema: &schema) }

        let baseline = ArrowExport.outstanding
        try SharedColumn.primitive("v", [1.0]).exportArrow(array: &array, schema: &schema)
        let badFormat = strdup("+m")!
        let originalFormat = schema.format
        schema.format = UnsafePointer(badFormat)
        #expect { try ImportedArrowArray.take(array: &array, schema: &schema) } throws: { "\($0)".contains("unsupported Arrow format '+m'") }
        // A refused import still released what it took over.
        #expect(ArrowExport.outstanding == baseline)
        withExtendedLifetime(originalFormat) {}
        free(badFormat)
    }

    @Test func tensorColumnsMustBeContiguous() throws {
        let rowMajor = try SharedTensor<Double>(shape: [3, 2])
        #expect(throws: ArrowError.self) { try SharedColumn(name: "c", tensor: rowMajor, column: 0) }
        var columnMajor = try SharedTensor<Double>(shape: [3, 2], layout: .columnMajor)
        columnMajor[2, 1] = 9
        let column = try SharedColumn(name: "c", tensor: columnMajor, column: 1)
        #expect(column.value(2, as: Double.self) == 9)
        #expect(column.withArrowBuffers { $0.values } == columnMajor.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress! + 3) })
    }

    @Test func tablesRefuseColumnsOfDifferentLengths() throws {
        #expect(throws: ArrowError.self) {
            try SharedTable([.primitive("a", [1.0]), .primitive("b", [1.0, 2.0])])
        }
    }
}
