import Kapsel
import KapselArrow
import KapselWire

/// `PythonValue` through the compact coder's fast path: every call to Python carries one
/// and answers one, and the synthesized `Codable` of an enum goes through nested keyed
/// containers, generic over their keys, at each level. The node is built and read here
/// directly, in the very shape that `Codable` gives it — `{case: {"_0": payload}}`, and
/// `{"none": {}}` — so either path reads what the other wrote; the payloads of arrays,
/// tables and handles go through their own coding.
extension PythonValue: CompactFastPath {
    package func compactValue(in coder: CompactNodeEncoding) throws -> CompactValue? {
        switch self {
        case .none: .map([("none", .map([]))])
        case .bool(let value): Self.node("bool", .bool(value))
        case .int(let value): Self.node("int", .int(Int64(value)))
        case .double(let value): Self.node("double", .double(value))
        case .string(let value): Self.node("string", .string(value))
        case .list(let items): Self.node("list", .array(try items.map { try coder.node(for: $0) }))
        case .dict(let entries): Self.node("dict", .map(try entries.map { ($0.key, try coder.node(for: $0.value)) }))
        case .array(let array): Self.node("array", try coder.node(for: array))
        case .table(let table): Self.node("table", try coder.node(for: table))
        case .object(let object): Self.node("object", try coder.node(for: object))
        }
    }

    package static func fromCompact(_ node: CompactValue, in coder: CompactNodeDecoding) throws -> PythonValue? {
        guard case .map(let entries) = node, entries.count == 1, case .map(let fields) = entries[0].value else { return nil }
        if entries[0].key == "none" { return fields.isEmpty ? PythonValue.none : nil }
        guard fields.count == 1, fields[0].key == "_0" else { return nil }
        let payload = fields[0].value
        switch (entries[0].key, payload) {
        case ("bool", .bool(let value)): return .bool(value)
        case ("int", _): return payload.integer(as: Int.self).map(PythonValue.int)
        case ("double", .double(let value)): return .double(value)
        case ("string", .string(let value)): return .string(value)
        case ("list", .array(let items)): return .list(try items.map { try coder.value(PythonValue.self, from: $0) })
        case ("dict", .map(let items)):
            var dictionary: [String: PythonValue] = [:]
            for (key, item) in items { dictionary[key] = try coder.value(PythonValue.self, from: item) }
            return .dict(dictionary)
        case ("array", _): return .array(try coder.value(PythonArray.self, from: payload))
        case ("table", _): return .table(try coder.value(SharedTable.self, from: payload))
        case ("object", _): return .object(try coder.value(PythonObject.self, from: payload))
        default: return nil
        }
    }

    /// The node of case `name` with its one payload.
    private static func node(_ name: String, _ payload: CompactValue) -> CompactValue {
        .map([(name, .map([("_0", payload)]))])
    }
}
