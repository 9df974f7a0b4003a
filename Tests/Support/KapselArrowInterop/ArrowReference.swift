import KapselArrow
import KapselSharedMemory

/// The reference table of the Arrow tests: every supported type, with nulls, plus a
/// column viewing a `SharedArray` and one viewing a column of a column-major tensor.
/// Swift and Python tests both compare against it (Python gets it as JSON).
public enum ArrowReference {
    public static let int8s: [Int8?] = [1, nil, -3, 4, 127]
    public static let int16s: [Int16?] = [-300, 2, nil, 4, 5]
    public static let int32s: [Int32?] = [nil, 70_000, -3, 4, 5]
    public static let int64s: [Int64?] = [1, 2, 3, nil, -9_000_000_000]
    public static let uint8s: [UInt8?] = [255, nil, 0, 4, 5]
    public static let uint16s: [UInt16?] = [65_535, 2, 3, nil, 5]
    public static let uint32s: [UInt32?] = [4_000_000_000, 2, nil, 4, 5]
    public static let uint64s: [UInt64?] = [1, nil, 3, 4, 18_000_000_000_000_000_000]
    public static let float32s: [Float?] = [0.5, -1.25, nil, 4, 5]
    public static let float64s: [Double?] = [nil, 2.5, -3.75, 1e300, 5]
    public static let bools: [Bool?] = [true, nil, false, true, false]
    public static let strings: [String?] = ["alpha", nil, "", "ünïcødé ✓", "z"]
    public static let shared: [Double] = [0.5, 1.5, 2.5, 3.5, 4.5]
    public static let tensorColumn: [Double] = [10, 11, 12, 13, 14]

    /// The table.
    public static func table() throws -> SharedTable {
        var tensor = try SharedTensor<Double>(shape: [5, 2], layout: .columnMajor)
        for row in 0..<5 {
            tensor[row, 0] = Double(row)
            tensor[row, 1] = tensorColumn[row]
        }
        return try SharedTable([
            .primitive("i8", int8s), .primitive("i16", int16s), .primitive("i32", int32s), .primitive("i64", int64s),
            .primitive("u8", uint8s), .primitive("u16", uint16s), .primitive("u32", uint32s), .primitive("u64", uint64s),
            .primitive("f32", float32s), .primitive("f64", float64s),
            .bool("flag", bools), .utf8("name", strings),
            SharedColumn(name: "shared", values: try SharedArray(shared)),
            SharedColumn(name: "tensor", tensor: tensor, column: 1),
        ])
    }

    /// Mismatches between `column` and the reference column named like it.
    public static func mismatches(in column: some ArrowColumnReadable, named name: String) -> [String] {
        func compare<T: Equatable>(_ expected: [T?], _ read: (Int) -> T?) -> [String] {
            guard column.length == expected.count else { return ["\(name): \(column.length) rows, expected \(expected.count)"] }
            return expected.indices.compactMap { row in
                let actual = read(row)
                return actual == expected[row] ? nil : "\(name)[\(row)]: \(String(describing: actual)), expected \(String(describing: expected[row]))"
            }
        }
        switch name {
        case "i8": return compare(int8s) { column.value($0, as: Int8.self) }
        case "i16": return compare(int16s) { column.value($0, as: Int16.self) }
        case "i32": return compare(int32s) { column.value($0, as: Int32.self) }
        case "i64": return compare(int64s) { column.value($0, as: Int64.self) }
        case "u8": return compare(uint8s) { column.value($0, as: UInt8.self) }
        case "u16": return compare(uint16s) { column.value($0, as: UInt16.self) }
        case "u32": return compare(uint32s) { column.value($0, as: UInt32.self) }
        case "u64": return compare(uint64s) { column.value($0, as: UInt64.self) }
        case "f32": return compare(float32s) { column.value($0, as: Float.self) }
        case "f64": return compare(float64s) { column.value($0, as: Double.self) }
        case "flag": return compare(bools) { column.bool($0) }
        case "name": return compare(strings) { column.string($0) }
        case "shared": return compare(shared.map { Optional($0) }) { column.value($0, as: Double.self) }
        case "tensor": return compare(tensorColumn.map { Optional($0) }) { column.value($0, as: Double.self) }
        default: return ["unexpected column \(name)"]
        }
    }

    /// The columns as JSON: `[{"name": ..., "type": ..., "values": [...]}, ...]`.
    public static func json() -> String {
        func column<T>(_ name: String, _ type: ArrowType, _ values: [T?], _ render: (T) -> String) -> String {
            let rendered = values.map { $0.map(render) ?? "null" }.joined(separator: ", ")
            return "{\"name\": \"\(name)\", \"type\": \"\(type.rawValue)\", \"values\": [\(rendered)]}"
        }
        func quoted(_ text: String) -> String {
            "\"" + text.map { $0 == "\"" || $0 == "\\" ? "\\\($0)" : String($0) }.joined() + "\""
        }
        let columns = [
            column("i8", .int8, int8s) { "\($0)" }, column("i16", .int16, int16s) { "\($0)" },
            column("i32", .int32, int32s) { "\($0)" }, column("i64", .int64, int64s) { "\($0)" },
            column("u8", .uint8, uint8s) { "\($0)" }, column("u16", .uint16, uint16s) { "\($0)" },
            column("u32", .uint32, uint32s) { "\($0)" }, column("u64", .uint64, uint64s) { "\($0)" },
            column("f32", .float32, float32s) { "\($0)" }, column("f64", .float64, float64s) { "\($0)" },
            column("flag", .bool, bools) { "\($0)" }, column("name", .utf8, strings, quoted),
            column("shared", .float64, shared.map { Optional($0) }) { "\($0)" },
            column("tensor", .float64, tensorColumn.map { Optional($0) }) { "\($0)" },
        ]
        return "[" + columns.joined(separator: ", ") + "]"
    }
}
