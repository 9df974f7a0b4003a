import NIOCore

/// Encodes values of different types one after another into a single compact array:
/// the arguments of a remote call.
///
/// ```swift
/// let arguments = CompactSequenceEncoder(attachments: writer)
/// try arguments.append(42)
/// try arguments.append("name")
/// let bytes = arguments.finish()
/// ```
public final class CompactSequenceEncoder {
    private let context: EncodingContext
    private var elements: [CompactValue] = []

    /// Creates an encoder; `userInfo` and `attachments` serve every appended value.
    public init(userInfo: [CodingUserInfoKey: any Sendable] = [:], attachments: (any CompactAttachmentWriter)? = nil) {
        context = EncodingContext(userInfo: userInfo, attachments: attachments)
    }

    /// An encoder whose user info is `entry` alone, made only if a value asks for it.
    package init(userInfoEntry entry: UserInfoEntry?, attachments: (any CompactAttachmentWriter)?) {
        context = EncodingContext(userInfo: [:], entry: entry, attachments: attachments)
    }

    /// Encodes `value` as the next element.
    public func append<T: Encodable>(_ value: T) throws {
        elements.append(try context.node(for: value, codingPath: [IndexKey(elements.count)]))
    }

    /// The elements as one compact array.
    public func finish() -> ByteBuffer {
        var buffer = ByteBuffer()
        CompactWriter.write(.array(elements), into: &buffer)
        return buffer
    }
}

/// Decodes, one after another, the values a `CompactSequenceEncoder` wrote.
public final class CompactSequenceDecoder {
    private let elements: [CompactValue]
    /// Shared by all the elements.
    private let info: LazyUserInfo
    private let attachments: (any CompactAttachmentReader)?
    private var position = 0

    /// Reads the array in `buffer`; throws if it is not a well-formed compact array.
    public convenience init(
        _ buffer: ByteBuffer, userInfo: [CodingUserInfoKey: any Sendable] = [:],
        attachments: (any CompactAttachmentReader)? = nil, limits: CompactLimits = CompactLimits()
    ) throws {
        try self.init(buffer, userInfo: userInfo, entry: nil, attachments: attachments, limits: limits)
    }

    /// Reads the array in `buffer`, with `entry` alone as user info, made only if a value asks for it.
    package convenience init(_ buffer: ByteBuffer, userInfoEntry entry: UserInfoEntry?, attachments: (any CompactAttachmentReader)?) throws {
        try self.init(buffer, userInfo: [:], entry: entry, attachments: attachments, limits: CompactLimits())
    }

    private init(
        _ buffer: ByteBuffer, userInfo: [CodingUserInfoKey: any Sendable], entry: UserInfoEntry?, attachments: (any CompactAttachmentReader)?, limits: CompactLimits
    ) throws {
        guard case .array(let elements) = try CompactReader.read(buffer, limits: limits) else {
            throw CompactFormatError("expected an array of values")
        }
        self.elements = elements
        self.info = LazyUserInfo(userInfo, entry: entry, attachmentKey: .compactAttachmentReader, attachments)
        self.attachments = attachments
    }

    /// Values not read yet.
    public var remaining: Int { elements.count - position }

    /// Decodes the next element as a `T`.
    public func next<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        guard position < elements.count else {
            throw DecodingError.valueNotFound(type, .init(codingPath: [], debugDescription: "only \(elements.count) values were sent"))
        }
        defer { position += 1 }
        return try NodeDecoder(node: elements[position], codingPath: [IndexKey(position)], info: info, attachments: attachments).decodeValue(type)
    }
}
