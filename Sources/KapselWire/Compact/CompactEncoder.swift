import NIOCore

/// Encodes `Encodable` values into Kapsel's compact binary format.
///
/// ```swift
/// let bytes = try CompactEncoder().encode(Point(x: 1, y: 2))
/// let point = try CompactDecoder().decode(Point.self, from: bytes)
/// ```
///
/// The format keeps keys (so hand-written `Codable` conformances that decode
/// conditionally work), writes integers as variable-length numbers, and stores arrays
/// of fixed-width numbers (`[Double]`, `[Int32]`, ...), `[UInt8]` and `Data` as raw
/// bytes rather than one value per element.
public struct CompactEncoder: Sendable {
    /// Values made available to `encode(to:)` implementations through `Encoder.userInfo`.
    public var userInfo: [CodingUserInfoKey: any Sendable]
    /// One more value of `userInfo`, added only when a value looks.
    package var userInfoEntry: UserInfoEntry?

    /// Creates an encoder.
    public init(userInfo: [CodingUserInfoKey: any Sendable] = [:]) {
        self.userInfo = userInfo
    }

    /// An encoder whose user info is `entry` alone, made only if a value asks for it.
    package init(userInfoEntry entry: UserInfoEntry?) {
        self.userInfo = [:]
        self.userInfoEntry = entry
    }

    /// Encodes `value` and returns the bytes in a new buffer.
    public func encode<T: Encodable>(_ value: T) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try self.encode(value, into: &buffer)
        return buffer
    }

    /// Encodes `value` and appends its bytes to `buffer`.
    public func encode<T: Encodable>(_ value: T, into buffer: inout ByteBuffer) throws {
        try encode(value, attachments: nil, into: &buffer)
    }

    /// Encodes `value` with `attachments` receiving large arrays (and, through
    /// `userInfo[.compactAttachmentWriter]`, any type that attaches memory itself).
    public func encode<T: Encodable>(_ value: T, attachments: (any CompactAttachmentWriter)?) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try encode(value, attachments: attachments, into: &buffer)
        return buffer
    }

    private func encode<T: Encodable>(_ value: T, attachments: (any CompactAttachmentWriter)?, into buffer: inout ByteBuffer) throws {
        let node = try EncodingContext(userInfo: userInfo, entry: userInfoEntry, attachments: attachments).node(for: value, codingPath: [])
        CompactWriter.write(node, into: &buffer)
    }
}

/// Shared by every encoder of one `encode` call.
struct EncodingContext {
    /// The encoder's user info, with the attachment writer: one per `encode` call,
    /// shared by every nested encoder.
    let userInfo: LazyUserInfo
    let attachments: (any CompactAttachmentWriter)?

    init(userInfo: [CodingUserInfoKey: any Sendable], entry: UserInfoEntry? = nil, attachments: (any CompactAttachmentWriter)?) {
        self.userInfo = LazyUserInfo(userInfo, entry: entry, attachmentKey: .compactAttachmentWriter, attachments)
        self.attachments = attachments
    }

    /// The node for one value: primitives and packed arrays directly, anything else
    /// through its own `encode(to:)`.
    func node<T: Encodable>(for value: T, codingPath: [any CodingKey]) throws -> CompactValue {
        if let primitive = Self.primitiveNode(value) { return primitive }
        if let fastType = CompactFastPathTypes.fastPath(of: T.self) {
            func fastNode<F: CompactFastPath>(_: F.Type) throws -> CompactValue? {
                try (value as! F).compactValue(in: CompactNodeEncoding(context: self))
            }
            if let node = try fastNode(fastType) { return node }
        }
        let box = EncodingBox()
        try value.encode(to: NodeEncoder(box: box, codingPath: codingPath, context: self))
        return try box.finish(codingPath: codingPath)
    }

    /// Primitives by metatype identity: one pointer comparison each, no dynamic cast.
    private static func primitiveNode<T>(_ value: T) -> CompactValue? {
        func cast<U>(_: U.Type) -> U { unsafeBitCast(value, to: U.self) }
        let type: Any.Type = T.self
        if type == String.self { return .string(cast(String.self)) }
        if type == Int.self { return .int(Int64(cast(Int.self))) }
        if type == Double.self { return .double(cast(Double.self)) }
        if type == Bool.self { return .bool(cast(Bool.self)) }
        if type == Float.self { return .float(cast(Float.self)) }
        if type == Int64.self { return .int(cast(Int64.self)) }
        if type == UInt64.self { return .uint(cast(UInt64.self)) }
        if type == UInt.self { return .uint(UInt64(cast(UInt.self))) }
        if type == Int32.self { return .int(Int64(cast(Int32.self))) }
        if type == UInt32.self { return .uint(UInt64(cast(UInt32.self))) }
        if type == Int16.self { return .int(Int64(cast(Int16.self))) }
        if type == UInt16.self { return .uint(UInt64(cast(UInt16.self))) }
        if type == Int8.self { return .int(Int64(cast(Int8.self))) }
        if type == UInt8.self { return .uint(UInt64(cast(UInt8.self))) }
        return nil
    }
}

/// What one `Encoder` has been given so far; containers write into it.
final class EncodingBox {
    enum Slot {
        case value(CompactValue)
        case box(EncodingBox)

        func finish(codingPath: [any CodingKey]) throws -> CompactValue {
            switch self {
            case .value(let value): value
            case .box(let box): try box.finish(codingPath: codingPath)
            }
        }
    }

    enum Content {
        case empty
        case single(CompactValue)
        case unkeyed([Slot])
        case keyed([(key: String, slot: Slot)])
    }

    var content: Content = .empty

    func finish(codingPath: [any CodingKey]) throws -> CompactValue {
        switch content {
        case .empty:
            // A type that asked for no container at all encodes as an empty keyed container,
            // as JSONEncoder does.
            return .map([])
        case .single(let value):
            return value
        case .unkeyed(let slots):
            return .array(try slots.map { try $0.finish(codingPath: codingPath) })
        case .keyed(let entries):
            return .map(try entries.map { ($0.key, try $0.slot.finish(codingPath: codingPath)) })
        }
    }

    func append(_ slot: Slot) {
        guard case .unkeyed(var slots) = content else { preconditionFailure("not an unkeyed container") }
        content = .empty
        slots.append(slot)
        content = .unkeyed(slots)
    }

    func append(key: String, _ slot: Slot) {
        guard case .keyed(var entries) = content else { preconditionFailure("not a keyed container") }
        content = .empty
        entries.append((key, slot))
        content = .keyed(entries)
    }
}

struct NodeEncoder: Encoder {
    let box: EncodingBox
    let codingPath: [any CodingKey]
    let context: EncodingContext

    var userInfo: [CodingUserInfoKey: Any] { context.userInfo.dictionary }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        switch box.content {
        case .keyed: break
        case .empty: box.content = .keyed([])
        default: preconditionFailure("\(codingPathDescription(codingPath)): a keyed container was requested after another kind")
        }
        return KeyedEncodingContainer(KeyedNodeEncoder<Key>(box: box, codingPath: codingPath, context: context))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        switch box.content {
        case .unkeyed: break
        case .empty: box.content = .unkeyed([])
        default: preconditionFailure("\(codingPathDescription(codingPath)): an unkeyed container was requested after another kind")
        }
        return UnkeyedNodeEncoder(box: box, codingPath: codingPath, context: context)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueNodeEncoder(box: box, codingPath: codingPath, context: context)
    }
}

struct KeyedNodeEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: EncodingBox
    let codingPath: [any CodingKey]
    let context: EncodingContext

    mutating func encodeNil(forKey key: Key) throws { box.append(key: key.stringValue, .value(.null)) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { box.append(key: key.stringValue, .value(.bool(value))) }
    mutating func encode(_ value: String, forKey key: Key) throws { box.append(key: key.stringValue, .value(.string(value))) }
    mutating func encode(_ value: Double, forKey key: Key) throws { box.append(key: key.stringValue, .value(.double(value))) }
    mutating func encode(_ value: Float, forKey key: Key) throws { box.append(key: key.stringValue, .value(.float(value))) }
    mutating func encode(_ value: Int, forKey key: Key) throws { box.append(key: key.stringValue, .value(.int(Int64(value)))) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { box.append(key: key.stringValue, .value(.int(Int64(value)))) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { box.append(key: key.stringValue, .value(.int(Int64(value)))) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { box.append(key: key.stringValue, .value(.int(Int64(value)))) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { box.append(key: key.stringValue, .value(.int(value))) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { box.append(key: key.stringValue, .value(.uint(UInt64(value)))) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { box.append(key: key.stringValue, .value(.uint(UInt64(value)))) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { box.append(key: key.stringValue, .value(.uint(UInt64(value)))) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { box.append(key: key.stringValue, .value(.uint(UInt64(value)))) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { box.append(key: key.stringValue, .value(.uint(value))) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        box.append(key: key.stringValue, .value(try context.node(for: value, codingPath: codingPath + [key])))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested = EncodingBox()
        box.append(key: key.stringValue, .box(nested))
        return NodeEncoder(box: nested, codingPath: codingPath + [key], context: context).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = EncodingBox()
        box.append(key: key.stringValue, .box(nested))
        return NodeEncoder(box: nested, codingPath: codingPath + [key], context: context).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        superEncoder(for: NamedKey.super)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        superEncoder(for: key)
    }

    private func superEncoder(for key: any CodingKey) -> any Encoder {
        let nested = EncodingBox()
        box.append(key: key.stringValue, .box(nested))
        return NodeEncoder(box: nested, codingPath: codingPath + [key], context: context)
    }
}

struct UnkeyedNodeEncoder: UnkeyedEncodingContainer {
    let box: EncodingBox
    let codingPath: [any CodingKey]
    let context: EncodingContext

    var count: Int {
        guard case .unkeyed(let slots) = box.content else { return 0 }
        return slots.count
    }

    private var nextKey: any CodingKey { IndexKey(count) }

    mutating func encodeNil() throws { box.append(.value(.null)) }
    mutating func encode(_ value: Bool) throws { box.append(.value(.bool(value))) }
    mutating func encode(_ value: String) throws { box.append(.value(.string(value))) }
    mutating func encode(_ value: Double) throws { box.append(.value(.double(value))) }
    mutating func encode(_ value: Float) throws { box.append(.value(.float(value))) }
    mutating func encode(_ value: Int) throws { box.append(.value(.int(Int64(value)))) }
    mutating func encode(_ value: Int64) throws { box.append(.value(.int(value))) }
    mutating func encode(_ value: UInt64) throws { box.append(.value(.uint(value))) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        box.append(.value(try context.node(for: value, codingPath: codingPath + [nextKey])))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = EncodingBox()
        let key = nextKey
        box.append(.box(nested))
        return NodeEncoder(box: nested, codingPath: codingPath + [key], context: context).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = EncodingBox()
        let key = nextKey
        box.append(.box(nested))
        return NodeEncoder(box: nested, codingPath: codingPath + [key], context: context).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let nested = EncodingBox()
        let key = nextKey
        box.append(.box(nested))
        return NodeEncoder(box: nested, codingPath: codingPath + [key], context: context)
    }
}

struct SingleValueNodeEncoder: SingleValueEncodingContainer {
    let box: EncodingBox
    let codingPath: [any CodingKey]
    let context: EncodingContext

    private func set(_ value: CompactValue) {
        guard case .empty = box.content else {
            preconditionFailure("\(codingPathDescription(codingPath)): a single value container was written twice")
        }
        box.content = .single(value)
    }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(.double(value)) }
    mutating func encode(_ value: Float) throws { set(.float(value)) }
    mutating func encode(_ value: Int) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { set(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { set(.int(value)) }
    mutating func encode(_ value: UInt) throws { set(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { set(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt16) throws { set(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt32) throws { set(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt64) throws { set(.uint(value)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        set(try context.node(for: value, codingPath: codingPath))
    }
}

/// The coding key of an element of an unkeyed container.
struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }

    init(_ index: Int) { self.intValue = index }
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { self.intValue = intValue }
}

/// A coding key by name: `super` for superclass encoders, whatever the container's keys are.
struct NamedKey: CodingKey {
    static let `super` = NamedKey(stringValue: "super")

    let stringValue: String
    var intValue: Int? { nil }

    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

/// `a.b.Index 3` style rendering of a coding path, for messages.
func codingPathDescription(_ path: [any CodingKey]) -> String {
    path.isEmpty ? "top level" : path.map(\.stringValue).joined(separator: ".")
}
