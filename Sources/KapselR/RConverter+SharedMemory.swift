import Kapsel
import KapselArrow

/// Numbers in bulk: tensors and tables into R without a copy where R can read the
/// memory as it lies, and out of R with one copy straight into shared memory.
extension RConverter {
    // MARK: Tensors

    /// `tensor` as an R vector, matrix or array (unprotected). A column-major tensor is
    /// read in place; a row-major one too, as its transpose (dimensions reversed); other
    /// strides are copied into an ordinary vector, column-major.
    func tensor<Element>(_ tensor: SharedTensor<Element>, kind: SharedVectors.Kind) throws -> SEXP {
        let shape: [Int]
        let vector: SEXP
        switch tensor.layout {
        case .columnMajor:
            shape = tensor.shape
            vector = try SharedVectors.make(tensor.buffer, count: tensor.elementCount, kind: kind, library)
        case .rowMajor:
            shape = tensor.shape.reversed()
            vector = try SharedVectors.make(tensor.buffer, count: tensor.elementCount, kind: kind, library)
        case .strided:
            shape = tensor.shape
            vector = copyColumnMajor(tensor, kind: kind)
        }
        guard shape.count > 1 else { return vector }
        let protected = library.protect(vector)
        defer { library.unprotect(1) }
        guard shape.allSatisfy({ $0 <= Int(Int32.max) }) else { throw RError("TooLarge", "a dimension of \(shape) exceeds R's limit") }
        let dimensions = library.allocVector(RType.integer.code, shape.count)
        for (index, extent) in shape.enumerated() { library.integer(dimensions)[index] = Int32(extent) }
        setAttribute(protected, library.dimSymbol, dimensions)
        return protected
    }

    /// An ordinary R vector holding `tensor`'s elements in column-major order.
    private func copyColumnMajor<Element>(_ tensor: SharedTensor<Element>, kind: SharedVectors.Kind) -> SEXP {
        let count = tensor.elementCount
        let vector = library.allocVector(kind == .double ? RType.double.code : RType.integer.code, count)
        let destination = kind == .double ? UnsafeMutableRawPointer(library.real(vector)) : UnsafeMutableRawPointer(library.integer(vector))
        let width = MemoryLayout<Element>.stride
        tensor.buffer.withUnsafeBytes { source in
            var index = [Int](repeating: 0, count: tensor.shape.count)
            for position in 0..<count {
                let offset = zip(index, tensor.strides).reduce(0) { $0 + $1.0 * $1.1 }
                (destination + position * width).copyMemory(from: source.baseAddress! + offset * width, byteCount: width)
                // The next index, first dimension fastest.
                for dimension in index.indices {
                    index[dimension] += 1
                    if index[dimension] < tensor.shape[dimension] { break }
                    index[dimension] = 0
                }
            }
        }
        return vector
    }

    /// An R numeric vector's elements copied once into shared memory, with its
    /// dimensions (a vector without them has one).
    func tensor<Element: BitwiseCopyable>(_ object: SEXP, as type: Element.Type) throws -> SharedTensor<Element> {
        let count = library.length(object)
        let dimensions = library.attribute(object, library.dimSymbol)
        let shape = dimensions == library.null
            ? [count]
            : UnsafeBufferPointer(start: library.integer(dimensions), count: library.length(dimensions)).map(Int.init)
        var tensor = try SharedTensor<Element>(shape: shape, layout: .columnMajor)
        let source = type == Double.self ? UnsafeRawPointer(library.real(object)) : UnsafeRawPointer(library.integer(object))
        tensor.withUnsafeMutableBufferPointer { destination in
            if count > 0 { UnsafeMutableRawPointer(destination.baseAddress!).copyMemory(from: source, byteCount: count * MemoryLayout<Element>.stride) }
        }
        return tensor
    }

    // MARK: Tables

    /// `table` as a `data.frame` (unprotected): double and 32-bit integer columns without
    /// nulls read in place, the others converted.
    func frame(_ table: SharedTable) throws -> SEXP {
        let frame = library.protect(library.allocVector(RType.list.code, table.columns.count))
        defer { library.unprotect(1) }
        for (index, column) in table.columns.enumerated() {
            _ = library.setVectorElement(frame, index, try self.column(column))
        }
        setAttribute(frame, library.namesSymbol, strings(table.columns.map(\.name)))
        let rowNames = library.protect(library.allocVector(RType.integer.code, 2))
        library.integer(rowNames)[0] = RMissing.integer
        library.integer(rowNames)[1] = -Int32(clamping: table.rowCount)
        setAttribute(frame, library.rowNamesSymbol, rowNames)
        library.unprotect(1)
        setAttribute(frame, library.classSymbol, string("data.frame"))
        return frame
    }

    /// One column as an R vector (unprotected).
    private func column(_ column: SharedColumn) throws -> SEXP {
        let rows = 0..<column.length
        switch column.arrowType {
        case .float64 where column.nullCount == 0:
            return try SharedVectors.make(column.values, count: column.length, kind: .double, library)
        case .int32 where column.nullCount == 0:
            return try SharedVectors.make(column.values, count: column.length, kind: .integer, library)
        case .float64:
            return try make(.double(rows.map { column.value($0, as: Double.self) }), helper: library.null)
        case .float32:
            return try make(.double(rows.map { column.value($0, as: Float.self).map(Double.init) }), helper: library.null)
        case .int64:
            return try make(.double(rows.map { column.value($0, as: Int64.self).map(Double.init) }), helper: library.null)
        case .uint32:
            return try make(.double(rows.map { column.value($0, as: UInt32.self).map(Double.init) }), helper: library.null)
        case .uint64:
            return try make(.double(rows.map { column.value($0, as: UInt64.self).map(Double.init) }), helper: library.null)
        case .int32:
            return try make(.integer(rows.map { column.value($0, as: Int32.self) }), helper: library.null)
        case .int16:
            return try make(.integer(rows.map { column.value($0, as: Int16.self).map(Int32.init) }), helper: library.null)
        case .int8:
            return try make(.integer(rows.map { column.value($0, as: Int8.self).map(Int32.init) }), helper: library.null)
        case .uint16:
            return try make(.integer(rows.map { column.value($0, as: UInt16.self).map(Int32.init) }), helper: library.null)
        case .uint8:
            return try make(.integer(rows.map { column.value($0, as: UInt8.self).map(Int32.init) }), helper: library.null)
        case .bool:
            return try make(.logical(rows.map { column.bool($0) }), helper: library.null)
        case .utf8:
            return try make(.character(rows.map { column.string($0) }), helper: library.null)
        }
    }

    /// A `data.frame` as a table: doubles, integers and logicals copied once into shared
    /// memory (`NA` becomes null), characters and factors as strings. Throws for a column
    /// of another kind.
    func table(_ frame: SEXP) throws -> SharedTable {
        let names = try strings(library.attribute(frame, library.namesSymbol)).map { $0 ?? "" }
        let columns = try names.enumerated().map { index, name in
            try column(named: name, library.vectorElement(frame, index))
        }
        return try SharedTable(columns)
    }

    private func column(named name: String, _ vector: SEXP) throws -> SharedColumn {
        let classAttribute = library.attribute(vector, library.classSymbol)
        let classes = classAttribute == library.null ? [] : try strings(classAttribute)
        let count = library.length(vector)
        switch library.typeOf(vector) {
        case RType.integer.rawValue where classes == ["factor"]:
            return try SharedColumn.utf8(name, try read(vector).strings ?? [])
        case _ where !classes.isEmpty:
            throw RError("NotPlainData", "column \(name) is of class \(classes.compactMap { $0 }.joined(separator: "/"))")
        case RType.double.rawValue:
            let values = UnsafeBufferPointer(start: library.real(vector), count: count)
            let array = try SharedArray<Double>(count: count) { destination in
                if count > 0 { destination.baseAddress!.update(from: values.baseAddress!, count: count) }
            }
            return try SharedColumn(name: name, values: array, validity: values.contains(where: RMissing.isNA) ? values.map { !RMissing.isNA($0) } : nil)
        case RType.integer.rawValue:
            let values = UnsafeBufferPointer(start: library.integer(vector), count: count)
            let array = try SharedArray<Int32>(count: count) { destination in
                if count > 0 { destination.baseAddress!.update(from: values.baseAddress!, count: count) }
            }
            return try SharedColumn(name: name, values: array, validity: values.contains(RMissing.integer) ? values.map { $0 != RMissing.integer } : nil)
        case RType.logical.rawValue:
            let values = UnsafeBufferPointer(start: library.logical(vector), count: count)
            return try SharedColumn.bool(name, values.map { $0 == RMissing.integer ? nil : $0 != 0 })
        case RType.string.rawValue:
            return try SharedColumn.utf8(name, try strings(vector))
        default:
            throw RError("NotPlainData", "column \(name) is not a vector of numbers, logicals or strings")
        }
    }
}
