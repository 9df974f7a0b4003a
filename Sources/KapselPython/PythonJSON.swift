import Foundation
import Kapsel

/// JSON as it crosses between a session and its interpreter (see `PythonHelper`).
enum PythonJSON: Codable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([PythonJSON])
    case object([String: PythonJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([PythonJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: PythonJSON].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value) where value.rounded() == value && value.isFinite:
            // JSON has no integral floats: 7.0 would read back as the integer 7.
            try container.encode(["$float": value])
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The number, if this is one.
    var number: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }

    /// A request as JSON text.
    static func request(_ fields: [String: PythonJSON]) -> String {
        String(decoding: (try? JSONEncoder().encode(PythonJSON.object(fields))) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The value of a response, or the Python exception it reports.
    static func result(of response: String) throws -> PythonJSON {
        guard case .object(let fields) = try JSONDecoder().decode(PythonJSON.self, from: Data(response.utf8)) else {
            throw PythonError(type: "KapselError", message: "a malformed answer from Python: \(response)")
        }
        if case .object(let error)? = fields["error"] {
            func text(_ key: String) -> String { if case .string(let value)? = error[key] { value } else { "" } }
            throw PythonError(type: text("type"), message: text("message"), traceback: text("traceback"))
        }
        return fields["ok"] ?? .null
    }
}

extension PythonValue {
    /// This value as the interpreter reads it; objects by their id.
    func json() async -> PythonJSON {
        switch self {
        case .none: return .null
        case .bool(let value): return .bool(value)
        case .int(let value): return .int(value)
        case .double(let value): return .double(value)
        case .string(let value): return .string(value)
        case .list(let values):
            var items: [PythonJSON] = []
            for value in values { items.append(await value.json()) }
            return .array(items)
        case .dict(let entries):
            var items: [String: PythonJSON] = [:]
            for (key, value) in entries { items[key] = await value.json() }
            return .object(items)
        case .array(let array):
            let token = SharedMemoryBridge.lend(array.buffer)
            return .object(["$array": .object([
                "token": .int(Int(token)), "address": .int(SharedMemoryBridge.address(of: array.buffer)), "bytes": .int(array.buffer.count),
                "dtype": .string(array.elementType), "shape": .array(array.shape.map(PythonJSON.int)),
                "strides": .array(array.strides.map(PythonJSON.int)),
            ])])
        case .table(let table):
            return .object(["$table": .object(["token": .int(Int(ArrowBridge.export(table)))])])
        case .object(let object):
            let id = await object.whenLocal { $0.objectID } ?? -1
            return .object(["$object": .int(id)])
        }
    }

    /// A value the interpreter answered with; objects become handles (actors of `system`).
    init(_ json: PythonJSON, system: KapselActorSystem) throws {
        switch json {
        case .null: self = .none
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .double(let value): self = .double(value)
        case .string(let value): self = .string(value)
        case .array(let items): self = .list(try items.map { try PythonValue($0, system: system) })
        case .object(let fields):
            if fields.count == 1, let number = fields["$float"], let value = number.number {
                self = .double(value)
            } else if case .object(let spec)? = fields["$array"], let array = PythonArray(spec) {
                self = .array(array)
            } else if case .object(let spec)? = fields["$table"], case .int(let token)? = spec["token"] {
                self = .table(try ArrowBridge.importTable(Int64(token)))
            } else if case .int(let id)? = fields["$object"] {
                let type: String = if case .string(let name)? = fields["$type"] { name } else { "object" }
                self = .object(PythonObject(actorSystem: system, configuration: PythonObject.Configuration(id: id, type: type)))
            } else {
                self = .dict(try fields.mapValues { try PythonValue($0, system: system) })
            }
        }
    }
}

extension PythonArray {
    /// The array Python wrote into the shared buffer `spec` names (taken back from it).
    init?(_ spec: [String: PythonJSON]) {
        guard case .int(let token)? = spec["token"], case .string(let type)? = spec["dtype"],
              case .array(let shape)? = spec["shape"], case .array(let strides)? = spec["strides"],
              let buffer = SharedMemoryBridge.take(Int64(token)) else { return nil }
        func integers(_ values: [PythonJSON]) -> [Int] { values.compactMap { if case .int(let value) = $0 { value } else { nil } } }
        self.init(elementType: type, shape: integers(shape), strides: integers(strides), buffer: buffer)
    }
}
