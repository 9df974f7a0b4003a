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
    /// Built once for all the elements.
    private let userInfo: [CodingUserInfoKey: Any]
    private let attachments: (any CompactAttachmentReader)?
    private var position = 0

    /// Reads the array in `buffer`; throws if it is not a well-formed compact array.
    public init(
        _ buffer: ByteBuffer, userInfo: [CodingUserInfoKey: any Sendable] = [:],
        attachments: (any CompactAttachmentReader)? = nil, limits: CompactLimits = CompactLimits()
    ) throws {
        guard case .array(let elements) = try CompactReader.read(buffer, limits: limits) else {
            throw CompactFormatError("expected an array of values")
        }
        self.elements = elements
        self.userInfo = makeUserInfo(userInfo, attachmentKey: .compactAttachmentReader, attachments)
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
        return try NodeDecoder(node: elements[position], codingPath: [IndexKey(position)], userInfo: userInfo, attachments: attachments).decodeValue(type)
    }
}
