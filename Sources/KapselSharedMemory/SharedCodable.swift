import KapselWire

/// `SharedBuffer`, `SharedArray` and `SharedTensor` encode as a small descriptor when
/// the encoder carries a `SharedAttachmentWriter` (Kapsel's own messages); any other
/// encoder (JSON, ...) gets the bytes themselves.
extension SharedBuffer: Codable {
    private enum CodingKeys: String, CodingKey { case attachment, offset, count, bytes }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if let writer = encoder.userInfo[.compactAttachmentWriter] as? SharedAttachmentWriter {
            try container.encode(try writer.attach(self), forKey: .attachment)
            try container.encode(offset, forKey: .offset)
            try container.encode(count, forKey: .count)
        } else {
            try container.encode(withUnsafeBytes { [UInt8]($0) }, forKey: .bytes)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.contains(.attachment) else {
            let bytes = try container.decode([UInt8].self, forKey: .bytes)
            try self.init(byteCount: bytes.count)
            bytes.withUnsafeBytes { source in withUnsafeMutableBytes { $0.copyMemory(from: source) } }
            return
        }
        guard let reader = decoder.userInfo[.compactAttachmentReader] as? SharedAttachmentReader else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a shared buffer refers to an attachment, but the message has none"))
        }
        let storage = try reader.storage(at: try container.decode(Int.self, forKey: .attachment))
        let offset = try container.decode(Int.self, forKey: .offset)
        let count = try container.decode(Int.self, forKey: .count)
        guard Self.liesInside(offset: offset, count: count, of: storage) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a shared buffer of \(count) bytes at \(offset) lies outside its \(storage.segment.byteCount)-byte attachment"))
        }
        self.init(storage: storage, offset: offset, count: count)
    }

    /// Whether `count` bytes at `offset` lie inside `storage`'s payload (checked without
    /// overflow: the numbers come from another process).
    fileprivate static func liesInside(offset: Int, count: Int, of storage: SharedStorage) -> Bool {
        offset >= 0 && count >= 0 && offset <= storage.segment.byteCount && count <= storage.segment.byteCount - offset
    }
}

extension SharedArray: Codable {
    private enum CodingKeys: String, CodingKey { case buffer, count, stride }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(buffer, forKey: .buffer)
        try container.encode(count, forKey: .count)
        try container.encode(MemoryLayout<Element>.stride, forKey: .stride)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try checkStride(of: Element.self, try container.decode(Int.self, forKey: .stride), decoder)
        try self.init(buffer: try container.decode(SharedBuffer.self, forKey: .buffer), count: try container.decode(Int.self, forKey: .count))
    }
}

extension SharedTensor: Codable {
    private enum CodingKeys: String, CodingKey { case buffer, shape, strides, stride }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(buffer, forKey: .buffer)
        try container.encode(shape, forKey: .shape)
        try container.encode(strides, forKey: .strides)
        try container.encode(MemoryLayout<Element>.stride, forKey: .stride)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try checkStride(of: Element.self, try container.decode(Int.self, forKey: .stride), decoder)
        try self.init(
            buffer: try container.decode(SharedBuffer.self, forKey: .buffer),
            shape: try container.decode([Int].self, forKey: .shape),
            strides: try container.decode([Int].self, forKey: .strides)
        )
    }
}

/// Elements encoded with `stride` bytes each must be read as a type of the same size.
private func checkStride<Element>(of type: Element.Type, _ stride: Int, _ decoder: any Decoder) throws {
    guard stride == MemoryLayout<Element>.stride else {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "elements of \(stride) bytes cannot be read as \(Element.self) (\(MemoryLayout<Element>.stride) bytes)"))
    }
}

// The compact coder's fast path: the same nodes the `Codable` conformances above give
// with an attachment writer, built and read directly (these values are on every message
// that carries shared memory). Anything irregular goes to the `Codable` path, which
// throws the full error.

extension SharedBuffer: CompactFastPath {
    package func compactValue(in coder: CompactNodeEncoding) throws -> CompactValue? {
        guard let writer = coder.attachments as? SharedAttachmentWriter else { return nil }
        return .map([
            ("attachment", .int(Int64(try writer.attach(self)))), ("offset", .int(Int64(offset))), ("count", .int(Int64(count))),
        ])
    }

    package static func fromCompact(_ node: CompactValue, in coder: CompactNodeDecoding) throws -> SharedBuffer? {
        guard let reader = coder.attachments as? SharedAttachmentReader, let index = node[key: "attachment"]?.integer(as: Int.self),
              let offset = node[key: "offset"]?.integer(as: Int.self), let count = node[key: "count"]?.integer(as: Int.self),
              let storage = try? reader.storage(at: index), liesInside(offset: offset, count: count, of: storage) else { return nil }
        return SharedBuffer(storage: storage, offset: offset, count: count)
    }
}

extension SharedArray: CompactFastPath {
    package func compactValue(in coder: CompactNodeEncoding) throws -> CompactValue? {
        guard let bufferNode = try buffer.compactValue(in: coder) else { return nil }
        return .map([("buffer", bufferNode), ("count", .int(Int64(count))), ("stride", .int(Int64(MemoryLayout<Element>.stride)))])
    }

    package static func fromCompact(_ node: CompactValue, in coder: CompactNodeDecoding) throws -> SharedArray? {
        guard node[key: "stride"]?.integer(as: Int.self) == MemoryLayout<Element>.stride, let count = node[key: "count"]?.integer(as: Int.self),
              let bufferNode = node[key: "buffer"], let buffer = try SharedBuffer.fromCompact(bufferNode, in: coder) else { return nil }
        return try? SharedArray(buffer: buffer, count: count)
    }
}

extension SharedTensor: CompactFastPath {
    package func compactValue(in coder: CompactNodeEncoding) throws -> CompactValue? {
        guard let bufferNode = try buffer.compactValue(in: coder) else { return nil }
        let shapeNode = try coder.node(for: shape), stridesNode = try coder.node(for: strides)
        return .map([("buffer", bufferNode), ("shape", shapeNode), ("strides", stridesNode), ("stride", .int(Int64(MemoryLayout<Element>.stride)))])
    }

    package static func fromCompact(_ node: CompactValue, in coder: CompactNodeDecoding) throws -> SharedTensor? {
        guard node[key: "stride"]?.integer(as: Int.self) == MemoryLayout<Element>.stride,
              let shapeNode = node[key: "shape"], let shape = try? coder.value([Int].self, from: shapeNode),
              let stridesNode = node[key: "strides"], let strides = try? coder.value([Int].self, from: stridesNode),
              let bufferNode = node[key: "buffer"], let buffer = try SharedBuffer.fromCompact(bufferNode, in: coder) else { return nil }
        return try? SharedTensor(buffer: buffer, shape: shape, strides: strides)
    }
}
