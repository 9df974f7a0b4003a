/// Where large values go instead of the encoded bytes: attachments that travel next
/// to a message (as shared memory on one machine). Pass one to
/// `CompactEncoder.encode(_:attachments:)`; encoders then also find it in `userInfo`
/// under `.compactAttachmentWriter`.
///
/// The compact coder uses it for arrays of fixed-width numbers (and `[UInt8]`, `Data`)
/// of at least `inlineLimit` bytes: they are copied once into an attachment and only a
/// reference is encoded. Types of other layers (`SharedArray`) use it directly.
public protocol CompactAttachmentWriter: AnyObject {
    /// Arrays smaller than this many bytes stay inline.
    var inlineLimit: Int { get }
    /// Copies `bytes` into a new attachment and returns its index in the message.
    func attach(copying bytes: UnsafeRawBufferPointer) throws -> Int
}

/// Gives decoders the attachments of the message being decoded. Pass one to
/// `CompactDecoder.decode(_:from:attachments:)`; decoders then also find it in
/// `userInfo` under `.compactAttachmentReader`.
public protocol CompactAttachmentReader: AnyObject {
    /// Calls `body` with the bytes of attachment `index`.
    func withAttachmentBytes<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R
}

extension CodingUserInfoKey {
    /// The `CompactAttachmentWriter` of the message being encoded, if any.
    public static let compactAttachmentWriter = CodingUserInfoKey(rawValue: "kapsel.attachmentWriter")!
    /// The `CompactAttachmentReader` of the message being decoded, if any.
    public static let compactAttachmentReader = CodingUserInfoKey(rawValue: "kapsel.attachmentReader")!
}

/// The user info nested encoders or decoders see: `base`, plus `attachments` under
/// `attachmentKey` when there are any. One per `encode` or `decode` call, shared by every
/// nested coder, and built only when a value asks for it: most values never do, and a
/// dictionary per message was a measurable share of a job's round trip.
final class LazyUserInfo {
    private let base: [CodingUserInfoKey: any Sendable]
    private let entry: UserInfoEntry?
    private let attachmentKey: CodingUserInfoKey
    private let attachments: AnyObject?

    init(_ base: [CodingUserInfoKey: any Sendable], entry: UserInfoEntry?, attachmentKey: CodingUserInfoKey, _ attachments: AnyObject?) {
        self.base = base
        self.entry = entry
        self.attachmentKey = attachmentKey
        self.attachments = attachments
    }

    /// The dictionary, made on first use.
    private(set) lazy var dictionary: [CodingUserInfoKey: Any] = {
        guard attachments != nil || entry != nil || !base.isEmpty else { return [:] }
        var info: [CodingUserInfoKey: Any] = base
        if let entry { info[entry.key] = entry.value }
        if let attachments { info[attachmentKey] = attachments }
        return info
    }()
}

/// One entry of a coder's user info given on its own (`CompactEncoder.userInfoEntry`), so
/// that a coder made per message needs no dictionary of its own.
package struct UserInfoEntry: Sendable {
    let key: CodingUserInfoKey
    let value: any Sendable

    /// `value` under `key`.
    package init(_ key: CodingUserInfoKey, _ value: any Sendable) {
        self.key = key
        self.value = value
    }
}

/// An encoded value that refers to an attachment instead of holding bytes.
public struct AttachmentReferenceError: Error, CustomStringConvertible, Sendable {
    /// What is wrong.
    public let description: String

    /// Creates an error.
    public init(_ description: String) {
        self.description = description
    }
}
