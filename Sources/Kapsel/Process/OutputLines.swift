/// Splits a child's output into lines (for `SpawnRequest.onOutputLine`), holding a last
/// line until its end arrives or the child ends. A line longer than `maxLength` bytes is
/// passed on in pieces of that length.
struct OutputLines {
    private var partial: [UInt8] = []
    let maxLength: Int

    init(maxLength: Int = 4096) {
        self.maxLength = maxLength
    }

    /// Takes a chunk of output; passes each line it completes to `emit`, without its newline.
    mutating func append(_ chunk: UnsafeRawBufferPointer, _ emit: (String) -> Void) {
        var start = chunk.startIndex
        while let newline = chunk[start...].firstIndex(of: UInt8(ascii: "\n")) {
            partial.append(contentsOf: chunk[start..<newline])
            flush(emit)
            start = newline + 1
        }
        partial.append(contentsOf: chunk[start...])
        while partial.count >= maxLength {
            emit(String(decoding: partial.prefix(maxLength), as: UTF8.self))
            partial.removeFirst(maxLength)
        }
    }

    /// The output ended: passes on a last line that had no newline.
    mutating func finish(_ emit: (String) -> Void) {
        if !partial.isEmpty { flush(emit) }
    }

    private mutating func flush(_ emit: (String) -> Void) {
        if partial.last == UInt8(ascii: "\r") { partial.removeLast() }
        emit(String(decoding: partial, as: UTF8.self))
        partial.removeAll(keepingCapacity: true)
    }
}
