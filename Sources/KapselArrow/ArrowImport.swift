import CKapselArrow

/// An Arrow array made by another library (PyArrow, DuckDB, a Rust crate...), taken over
/// through the C Data Interface: its memory is read where it is, never copied, and
/// released (the producer's release callback) when the last Swift reference goes.
///
/// ```swift
/// let batch = try ImportedArrowArray.take(array: arrayPointer, schema: schemaPointer)
/// let prices = batch.column(named: "price")!
/// prices.value(0, as: Double.self)
/// ```
///
/// Struct arrays (record batches) give their columns through `columns`; each column keeps
/// the whole batch alive.
public final class ImportedArrowArray: ArrowColumnReadable {
    private let array: UnsafeMutablePointer<ArrowArray>
    private let schema: UnsafeMutablePointer<ArrowSchema>
    /// The root this array belongs to (nil for the root itself, which owns the structs).
    private let root: ImportedArrowArray?
    private let kind: Kind

    private enum Kind {
        case column(ArrowType)
        case structure
    }

    /// The field name from the schema.
    public let name: String

    private init(array: UnsafeMutablePointer<ArrowArray>, schema: UnsafeMutablePointer<ArrowSchema>, root: ImportedArrowArray?, kind: Kind) {
        self.array = array
        self.schema = schema
        self.root = root
        self.kind = kind
        self.name = schema.pointee.name.map { String(cString: $0) } ?? ""
    }

    /// A checked view of `array`: once built, it owns the structs when `root` is nil
    /// (its deinit releases them, also when a check fails).
    private static func make(array: UnsafeMutablePointer<ArrowArray>, schema: UnsafeMutablePointer<ArrowSchema>, root: ImportedArrowArray?) throws -> ImportedArrowArray {
        let format = schema.pointee.format.map { String(cString: $0) } ?? ""
        let kind: Kind
        if format == "+s" {
            kind = .structure
        } else if let type = ArrowType(format: format) {
            kind = .column(type)
        } else {
            if root == nil { release(array: array, schema: schema) }
            throw ArrowError("unsupported Arrow format '\(format)'")
        }
        let imported = ImportedArrowArray(array: array, schema: schema, root: root, kind: kind)
        try imported.validate()
        return imported
    }

    /// Takes ownership of `array` and `schema` by moving them (the spec's move: the
    /// structs are copied and the originals marked released), so the caller's structs
    /// can be reused. On error the data is released.
    public static func take(array source: UnsafeMutablePointer<ArrowArray>, schema sourceSchema: UnsafeMutablePointer<ArrowSchema>) throws -> ImportedArrowArray {
        guard source.pointee.release != nil, sourceSchema.pointee.release != nil else {
            throw ArrowError("the array or schema was already released")
        }
        let array = UnsafeMutablePointer<ArrowArray>.allocate(capacity: 1)
        array.initialize(to: source.pointee)
        source.pointee.release = nil
        let schema = UnsafeMutablePointer<ArrowSchema>.allocate(capacity: 1)
        schema.initialize(to: sourceSchema.pointee)
        sourceSchema.pointee.release = nil
        return try make(array: array, schema: schema, root: nil)
    }

    deinit {
        if root == nil { Self.release(array: array, schema: schema) }
    }

    private static func release(array: UnsafeMutablePointer<ArrowArray>, schema: UnsafeMutablePointer<ArrowSchema>) {
        if let release = array.pointee.release { release(array) }
        if let release = schema.pointee.release { release(schema) }
        array.deallocate()
        schema.deallocate()
    }

    private func validate() throws {
        let pointee = array.pointee
        guard pointee.length >= 0, pointee.offset >= 0, pointee.null_count >= -1 else {
            throw ArrowError("negative length, offset or null count")
        }
        switch kind {
        case .column(let type):
            guard pointee.n_buffers == type.bufferCount, pointee.buffers != nil else {
                throw ArrowError("a \(type) array must have \(type.bufferCount) buffers, not \(pointee.n_buffers)")
            }
            if pointee.length > 0 {
                guard pointee.buffers[1] != nil, type != .utf8 || pointee.buffers[2] != nil else { throw ArrowError("a \(type) array without data") }
            }
            guard pointee.null_count == 0 || pointee.buffers[0] != nil || pointee.length == 0 else {
                throw ArrowError("an array with nulls but no validity bitmap")
            }
        case .structure:
            guard pointee.n_children == schema.pointee.n_children, pointee.n_children == 0 || pointee.children != nil else {
                throw ArrowError("a struct array whose children do not match its schema")
            }
        }
    }

    /// Whether this is a struct array (a record batch).
    public var isStructure: Bool {
        if case .structure = kind { true } else { false }
    }

    public var arrowType: ArrowType {
        guard case .column(let type) = kind else { preconditionFailure("a struct array has no value type; read its columns") }
        return type
    }

    public var length: Int { Int(array.pointee.length) }

    public var nullCount: Int {
        let declared = Int(array.pointee.null_count)
        guard declared < 0 else { return declared }
        return (0..<length).filter(isNull).count
    }

    /// The columns of a struct array.
    public var columns: [ImportedArrowArray] {
        get throws {
            guard isStructure else { return [] }
            let owner = root ?? self
            return try (0..<Int(array.pointee.n_children)).map { index in
                guard let child = array.pointee.children[index], let childSchema = schema.pointee.children[index] else {
                    throw ArrowError("struct child \(index) is missing")
                }
                return try Self.make(array: child, schema: childSchema, root: owner)
            }
        }
    }

    /// The column of a struct array named `name`.
    public func column(named name: String) throws -> ImportedArrowArray? {
        try columns.first { $0.name == name }
    }

    public func withArrowBuffers<R>(_ body: (ArrowBuffers) throws -> R) rethrows -> R {
        let pointee = array.pointee
        let buffers = pointee.buffers!
        let isString = arrowType == .utf8
        return try withExtendedLifetime(self) {
            try body(ArrowBuffers(
                validity: buffers[0],
                values: isString ? buffers[2] : buffers[1],
                offsets: isString ? buffers[1] : nil,
                offset: Int(pointee.offset)
            ))
        }
    }
}
