/// The last bytes a child process wrote to its standard output and error, kept so
/// a crash report can show what the process said before it died.
struct OutputTail: Sendable {
    private(set) var bytes: [UInt8] = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: chunk.suffix(capacity))
        if bytes.count > capacity { bytes.removeFirst(bytes.count - capacity) }
    }

    /// The kept output as text, trimmed of surrounding blank lines; nil when empty.
    var text: String? {
        let text = String(decoding: bytes, as: UTF8.self)
        let trimmed = text.drop(while: \.isNewline).reversed().drop(while: { $0.isNewline || $0 == " " })
        return trimmed.isEmpty ? nil : String(trimmed.reversed())
    }
}
