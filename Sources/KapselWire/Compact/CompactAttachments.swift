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
/// `attachmentKey` when there are any. Empty (no allocation) when both are.
func makeUserInfo(_ base: [CodingUserInfoKey: any Sendable], attachmentKey: CodingUserInfoKey, _ attachments: AnyObject?) -> [CodingUserInfoKey: Any] {
    guard attachments != nil || !base.isEmpty else { return [:] }
    var info: [CodingUserInfoKey: Any] = base
    if let attachments { info[attachmentKey] = attachments }
    return info
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
