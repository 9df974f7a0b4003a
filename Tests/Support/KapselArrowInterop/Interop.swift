// C entry points for Tests/Python/arrow_interop.py, which loads this library with ctypes
// and checks Kapsel's Arrow export and import against PyArrow.
import CKapselArrow
import KapselArrow
import KapselSharedMemory
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

private let lastMessage = Mutex<UnsafeMutablePointer<CChar>?>(nil)
private let sharedColumnAddress = Atomic<Int>(0)

private func remember(_ message: String) {
    lastMessage.withLock { stored in
        free(stored)
        stored = strdup(message)
    }
}

/// Exports the reference table as a record batch into the given structs. Returns 0, or -1.
@_cdecl("kapsel_test_export_table")
public func exportTable(_ array: UnsafeMutablePointer<ArrowArray>, _ schema: UnsafeMutablePointer<ArrowSchema>) -> Int32 {
    do {
        let table = try ArrowReference.table()
        table["shared"]!.withArrowBuffers { sharedColumnAddress.store(Int(bitPattern: $0.values), ordering: .relaxed) }
        table.exportArrow(array: array, schema: schema)
        return 0
    } catch {
        remember("\(error)")
        return -1
    }
}

/// The address of the "shared" column's values in the last exported table.
@_cdecl("kapsel_test_shared_column_address")
public func sharedAddress() -> Int {
    sharedColumnAddress.load(ordering: .relaxed)
}

/// Exported structs not yet released by their consumer.
@_cdecl("kapsel_test_outstanding_exports")
public func outstandingExports() -> Int {
    ArrowExport.outstanding
}

/// The reference table as JSON (a C string owned by the library).
@_cdecl("kapsel_test_reference_json")
public func referenceJSON() -> UnsafePointer<CChar> {
    remember(ArrowReference.json())
    return UnsafePointer(lastMessage.withLock { $0! })
}

/// Takes a record batch exported by another library and compares it with the reference.
/// Returns the number of mismatches (see `kapsel_test_last_message`), or -1 on error.
@_cdecl("kapsel_test_check_import")
public func checkImport(_ array: UnsafeMutablePointer<ArrowArray>, _ schema: UnsafeMutablePointer<ArrowSchema>) -> Int32 {
    do {
        let batch = try ImportedArrowArray.take(array: array, schema: schema)
        var problems: [String] = []
        let columns = try batch.columns
        if columns.count != 14 { problems.append("\(columns.count) columns, expected 14") }
        for column in columns { problems += ArrowReference.mismatches(in: column, named: column.name) }
        remember(problems.joined(separator: "; "))
        return Int32(problems.count)
    } catch {
        remember("\(error)")
        return -1
    }
}

/// Takes a float64 array, and returns the address of its values as Swift reads them (to
/// compare with the producer's: equal means no copy). The array is released before returning.
@_cdecl("kapsel_test_imported_values_address")
public func importedValuesAddress(_ array: UnsafeMutablePointer<ArrowArray>, _ schema: UnsafeMutablePointer<ArrowSchema>) -> Int {
    guard let imported = try? ImportedArrowArray.take(array: array, schema: schema) else { return -1 }
    return imported.withArrowBuffers { Int(bitPattern: $0.values) }
}

/// The message of the last check or error.
@_cdecl("kapsel_test_last_message")
public func lastCheckMessage() -> UnsafePointer<CChar>? {
    lastMessage.withLock { $0.map { UnsafePointer($0) } }
}
