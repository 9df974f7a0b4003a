import NIOCore

/// Decodes `Decodable` values from Kapsel's compact binary format (see `CompactEncoder`).
///
/// Input is untrusted: malformed bytes throw `CompactFormatError`, a well-formed value
/// of the wrong shape throws `DecodingError`; nothing is allocated beyond the size
/// of the input.
public struct CompactDecoder: Sendable {
    /// Values made available to `init(from:)` implementations through `Decoder.userInfo`.
    public var userInfo: [CodingUserInfoKey: any Sendable]
    /// Bounds enforced on the input.
    public var limits: CompactLimits
    /// One more value of `userInfo`, added only when a value looks.
    package var userInfoEntry: UserInfoEntry?

    /// Creates a decoder.
    public init(userInfo: [CodingUserInfoKey: any Sendable] = [:], limits: CompactLimits = CompactLimits()) {
        self.userInfo = userInfo
        self.limits = limits
    }

    /// A decoder whose user info is `entry` alone, made only if a value asks for it.
    package init(userInfoEntry entry: UserInfoEntry?, limits: CompactLimits = CompactLimits()) {
        self.userInfo = [:]
        self.limits = limits
        self.userInfoEntry = entry
    }

    /// Decodes a `T` from the readable bytes of `buffer`, which must hold exactly one value.
    public func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        try decode(type, from: buffer, attachments: nil)
    }

    /// Decodes a `T` whose large arrays (and attached memory) are in `attachments`.
    public func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer, attachments: (any CompactAttachmentReader)?) throws -> T {
        let node = try CompactReader.read(buffer, limits: limits)
        let info = LazyUserInfo(userInfo, entry: userInfoEntry, attachmentKey: .compactAttachmentReader, attachments)
        return try NodeDecoder(node: node, codingPath: [], info: info, attachments: attachments).decodeValue(type)
    }

    /// Decodes a `T` from `bytes`, which must hold exactly one value.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decode(type, from: ByteBuffer(bytes: bytes))
    }
}

struct NodeDecoder: Decoder {
    let node: CompactValue
    let codingPath: [any CodingKey]
    /// The decoder's user info, with the attachment reader: one per `decode` call,
    /// shared by every nested decoder.
    let info: LazyUserInfo
    let attachments: (any CompactAttachmentReader)?

    var userInfo: [CodingUserInfoKey: Any] { info.dictionary }

    /// A decoder sharing `info` with the one that made it.
    init(node: CompactValue, codingPath: [any CodingKey], info: LazyUserInfo, attachments: (any CompactAttachmentReader)?) {
        self.node = node
        self.codingPath = codingPath
        self.info = info
        self.attachments = attachments
    }

    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if let fastType = CompactFastPathTypes.fastPath(of: type) {
            if let value = try fastType.fromCompact(node, in: CompactNodeDecoding(decoder: self)) { return value as! T }
        }
        return try T(from: self)
    }

    func child(_ node: CompactValue, key: any CodingKey) -> NodeDecoder {
        NodeDecoder(node: node, codingPath: codingPath + [key], info: info, attachments: attachments)
    }

    /// A decoder of `node` at this one's coding path (for a part a fast path reads).
    func child(_ node: CompactValue) -> NodeDecoder {
        NodeDecoder(node: node, codingPath: codingPath, info: info, attachments: attachments)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .map(let entries) = node else {
            throw mismatch([String: Int].self, "expected a keyed container, found \(node.kindName)")
        }
        return KeyedDecodingContainer(KeyedNodeDecoder<Key>(entries: entries, decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let elements: ElementSource
        switch node {
        case .array(let values): elements = .nodes(values)
        case .packed(let kind, let bytes): elements = .packed(kind, bytes)
        case .bytes(let bytes): elements = .packed(.uint8, bytes)
        case .external(let kind, _, _):
            let bytes = try withPackedBytes(of: node, kind: kind, attachments: attachments) { [UInt8]($0) }!
            elements = .packed(kind, bytes)
        default: throw mismatch([Int].self, "expected an array, found \(node.kindName)")
        }
        return UnkeyedNodeDecoder(elements: elements, decoder: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueNodeDecoder(decoder: self)
    }

    func mismatch(_ type: Any.Type, _ message: String) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: message))
    }

    // MARK: Primitives

    func decodeBool() throws -> Bool {
        guard case .bool(let flag) = node else { throw mismatch(Bool.self, "expected a bool, found \(node.kindName)") }
        return flag
    }

    func decodeString() throws -> String {
        guard case .string(let text) = node else { throw mismatch(String.self, "expected a string, found \(node.kindName)") }
        return text
    }

    func decodeInteger<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        switch node {
        case .int, .uint: break
        default: throw mismatch(type, "expected an integer, found \(node.kindName)")
        }
        guard let result = node.integer(as: type) else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "number does not fit in \(type)"))
        }
        return result
    }

    func decodeFloatingPoint<F: BinaryFloatingPoint>(_ type: F.Type) throws -> F {
        switch node {
        case .double(let number): return F(number)
        case .float(let number): return F(number)
        case .int(let number): return F(number)
        case .uint(let number): return F(number)
        default: throw mismatch(type, "expected a number, found \(node.kindName)")
        }
    }
}

struct KeyedNodeDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: NodeDecoder
    private let entries: [(key: String, value: CompactValue)]
    /// Built only for containers with many keys; small ones are searched in place.
    private let index: [String: Int]?

    init(entries: [(key: String, value: CompactValue)], decoder: NodeDecoder) {
        self.entries = entries
        self.decoder = decoder
        if entries.count > 8 {
            var index: [String: Int] = [:]
            for (position, entry) in entries.enumerated() { index[entry.key] = position }
            self.index = index
        } else {
            self.index = nil
        }
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { entries.compactMap { Key(stringValue: $0.key) } }

    private func lookup(_ key: any CodingKey) -> CompactValue? {
        if let index { return index[key.stringValue].map { entries[$0].value } }
        return CompactValue.value(forKey: key.stringValue, in: entries)
    }

    private func child(_ key: any CodingKey) throws -> NodeDecoder {
        guard let node = lookup(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no value for key '\(key.stringValue)'"))
        }
        return decoder.child(node, key: key)
    }

    func contains(_ key: Key) -> Bool { lookup(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let node = lookup(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no value for key '\(key.stringValue)'"))
        }
        return node == .null
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).decodeBool() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).decodeString() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key).decodeFloatingPoint(type) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try child(key).decodeFloatingPoint(type) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).decodeInteger(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try child(key).decodeInteger(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try child(key).decodeInteger(type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try child(key).decodeInteger(type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try child(key).decodeInteger(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try child(key).decodeInteger(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try child(key).decodeInteger(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try child(key).decodeInteger(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try child(key).decodeInteger(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try child(key).decodeInteger(type) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decodeValue(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try child(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { try child(NamedKey.super) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
}

/// The elements of an unkeyed container: nodes, or raw packed numbers read on demand.
enum ElementSource {
    case nodes([CompactValue])
    case packed(PackedKind, [UInt8])

    var count: Int {
        switch self {
        case .nodes(let nodes): nodes.count
        case .packed(let kind, let bytes): bytes.count / kind.width
        }
    }

    subscript(index: Int) -> CompactValue {
        switch self {
        case .nodes(let nodes):
            return nodes[index]
        case .packed(let kind, let bytes):
            return bytes.withUnsafeBytes { raw in
                let offset = index * kind.width
                switch kind {
                case .int8: return .int(Int64(raw.loadUnaligned(fromByteOffset: offset, as: Int8.self)))
                case .uint8: return .uint(UInt64(raw[offset]))
                case .int16: return .int(Int64(raw.loadUnaligned(fromByteOffset: offset, as: Int16.self)))
                case .uint16: return .uint(UInt64(raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
                case .int32: return .int(Int64(raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
                case .uint32: return .uint(UInt64(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                case .int64: return .int(raw.loadUnaligned(fromByteOffset: offset, as: Int64.self))
                case .uint64: return .uint(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                case .float32: return .float(raw.loadUnaligned(fromByteOffset: offset, as: Float.self))
                case .float64: return .double(raw.loadUnaligned(fromByteOffset: offset, as: Double.self))
                }
            }
        }
    }
}

struct UnkeyedNodeDecoder: UnkeyedDecodingContainer {
    let elements: ElementSource
    let decoder: NodeDecoder
    private(set) var currentIndex = 0

    init(elements: ElementSource, decoder: NodeDecoder) {
        self.elements = elements
        self.decoder = decoder
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private mutating func next(_ type: Any.Type) throws -> NodeDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "unkeyed container is at its end"))
        }
        defer { currentIndex += 1 }
        return decoder.child(elements[currentIndex], key: IndexKey(currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Never.self, .init(codingPath: codingPath, debugDescription: "unkeyed container is at its end"))
        }
        if elements[currentIndex] == .null {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type).decodeBool() }
    mutating func decode(_ type: String.Type) throws -> String { try next(type).decodeString() }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(type).decodeFloatingPoint(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(type).decodeFloatingPoint(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(type).decodeInteger(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(type).decodeInteger(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(type).decodeInteger(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(type).decodeInteger(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(type).decodeInteger(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(type).decodeInteger(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(type).decodeInteger(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(type).decodeInteger(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(type).decodeInteger(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(type).decodeInteger(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(type).decodeValue(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next(type).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next([Any].self).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { try next(Any.self) }
}

struct SingleValueNodeDecoder: SingleValueDecodingContainer {
    let decoder: NodeDecoder

    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.node == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try decoder.decodeBool() }
    func decode(_ type: String.Type) throws -> String { try decoder.decodeString() }
    func decode(_ type: Double.Type) throws -> Double { try decoder.decodeFloatingPoint(type) }
    func decode(_ type: Float.Type) throws -> Float { try decoder.decodeFloatingPoint(type) }
    func decode(_ type: Int.Type) throws -> Int { try decoder.decodeInteger(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decoder.decodeInteger(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decoder.decodeInteger(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decoder.decodeInteger(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decoder.decodeInteger(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try decoder.decodeInteger(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decoder.decodeInteger(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decoder.decodeInteger(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decoder.decodeInteger(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decoder.decodeInteger(type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(type) }
}
