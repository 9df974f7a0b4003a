import KapselSharedMemory
import KapselWire
import NIOCore

/// A value as it crosses between processes: its bytes in the compact format, and the
/// shared memory those bytes refer to by index, which travels beside them.
///
/// Jobs, results, actor calls and creations all travel as envelopes, made and opened
/// only here, so the way a value is encoded for the wire (the actor system for actor
/// references, large arrays copied once into shared memory) is written once.
///
/// ```swift
/// let envelope = try Envelope(encoding: job, inlineLimit: 1 << 20, actorSystem: system)
/// let again = try envelope.decode(Simulate.self, actorSystem: system)
/// ```
struct Envelope: Sendable {
    /// The value in the compact format.
    var payload: ByteBuffer
    /// The shared memory the payload refers to, in the order of its indices.
    var attachments: [SharedStorage]

    /// An envelope of bytes and memory already encoded (or received).
    init(payload: ByteBuffer, attachments: [SharedStorage] = []) {
        self.payload = payload
        self.attachments = attachments
    }

    /// `value` encoded: `SharedBuffer`s and what is built on them attached by reference,
    /// plain arrays of at least `inlineLimit` bytes copied once into new shared memory.
    /// Actor references are encoded through `actorSystem`.
    init<T: Encodable>(encoding value: T, inlineLimit: Int, actorSystem: KapselActorSystem?) throws {
        let writer = SharedAttachmentWriter(inlineLimit: inlineLimit)
        payload = try CompactEncoder(userInfoEntry: Self.userInfoEntry(actorSystem)).encode(value, attachments: writer)
        attachments = writer.storages
    }

    /// The value, read where its shared memory lies.
    func decode<T: Decodable>(_ type: T.Type, actorSystem: KapselActorSystem?) throws -> T {
        try CompactDecoder(userInfoEntry: Self.userInfoEntry(actorSystem)).decode(type, from: payload, attachments: attachmentReader)
    }

    /// What a decoder reads the attachments through (nil when there are none).
    var attachmentReader: SharedAttachmentReader? {
        attachments.isEmpty ? nil : SharedAttachmentReader(storages: attachments)
    }

    /// What values that refer to actors find in their coder's user info: the actor system.
    static func userInfoEntry(_ actorSystem: KapselActorSystem?) -> UserInfoEntry? {
        actorSystem.map { UserInfoEntry(.actorSystemKey, $0) }
    }
}
