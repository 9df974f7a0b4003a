/// Values the compact coder turns into a node (and back) directly, without going through
/// `Encoder`/`Decoder` containers: packed arrays (one node of raw bytes, or a reference
/// to an attachment when large), the shared-memory types of other layers, and the
/// envelopes other layers put around every result (a map batch's outcomes), which are
/// on every message that carries them.
///
/// The node must have the same shape `encode(to:)` would give, so either path reads
/// what the other wrote. Parts a fast path does not build by hand go through `coder`.
package protocol CompactFastPath {
    /// The node that stands for the whole value, or nil to encode it through `encode(to:)`.
    func compactValue(in coder: CompactNodeEncoding) throws -> CompactValue?
    /// The value read back from `node`, or nil to decode it through `init(from:)` (a node
    /// of another shape, or one that is wrong and needs the full error).
    static func fromCompact(_ node: CompactValue, in coder: CompactNodeDecoding) throws -> Self?
}

/// The encoder as a fast path sees it: where large arrays go, and the node of any part.
package struct CompactNodeEncoding {
    let context: EncodingContext

    /// Receives large arrays and attached memory, when the message has attachments.
    package var attachments: (any CompactAttachmentWriter)? { context.attachments }

    /// The node the encoder makes for `value`, by its fast path or its `encode(to:)`.
    package func node<T: Encodable>(for value: T) throws -> CompactValue {
        try context.node(for: value, codingPath: [])
    }
}

/// The decoder as a fast path sees it: where large arrays are, and the value of any part.
package struct CompactNodeDecoding {
    let decoder: NodeDecoder

    /// Holds large arrays and attached memory, when the message has attachments.
    package var attachments: (any CompactAttachmentReader)? { decoder.attachments }

    /// The value `node` holds, read by its type's fast path or its `init(from:)`.
    package func value<T: Decodable>(_ type: T.Type, from node: CompactValue) throws -> T {
        try decoder.child(node).decodeValue(type)
    }
}

/// Whether a type takes the fast path, worked out once per type: a dynamic cast to a
/// protocol with conditional conformances (`Array where Element: ...`) costs a
/// conformance search, on every nested value of every message.
enum CompactFastPathTypes {
    /// A type's fast path, if it has one. `@unchecked Sendable`: a metatype is immutable.
    private struct Entry: @unchecked Sendable {
        let fastPath: (any CompactFastPath.Type)?
    }

    private static let known = PerTypeCache<Entry>()

    static func fastPath<T>(of type: T.Type) -> (any CompactFastPath.Type)? {
        known.value(for: type) { Entry(fastPath: type as? any CompactFastPath.Type) }.fastPath
    }
}
