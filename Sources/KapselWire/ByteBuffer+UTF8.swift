import NIOCore

extension ByteBuffer {
    /// Reads `length` bytes as UTF-8, or returns nil (reading nothing) if they are not
    /// valid UTF-8 or not all there. Unlike `readString(length:)`, invalid bytes are
    /// refused, never silently replaced.
    mutating func readValidUTF8(length: Int) -> String? {
        guard let view = viewBytes(at: readerIndex, length: length),
              let text = String(validating: view, as: UTF8.self) else { return nil }
        moveReaderIndex(forwardBy: length)
        return text
    }
}
