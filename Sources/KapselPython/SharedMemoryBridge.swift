import Kapsel

/// Shared memory lent to the embedded interpreter, by token: buffers Python views (held
/// until Python's last view of them is gone, when it calls `kapsel_release`) and
/// buffers Python fills with a result (`kapsel_allocate`, then taken back by Swift).
enum SharedMemoryBridge {
    private static let lent = TokenRegistry<SharedBuffer>()

    /// Lends `buffer` to Python; returns its token.
    static func lend(_ buffer: SharedBuffer) -> Int64 {
        lent.lend(buffer)
    }

    /// Takes back the buffer of `token` (a result Python wrote).
    static func take(_ token: Int64) -> SharedBuffer? {
        lent.take(token)
    }

    /// Buffers Python holds now.
    static var count: Int { lent.count }

    /// The address of a buffer's first byte, as it lies (no copy-on-write check: Python
    /// views it read-only, or fills a buffer nobody else sees yet).
    static func address(of buffer: SharedBuffer) -> Int {
        Int(bitPattern: buffer.storage.segment.payload + buffer.offset)
    }

    /// Python calls these through ctypes; their addresses go to it at start-up.
    static let allocate: @convention(c) (Int64) -> Int64 = { byteCount in
        guard byteCount >= 0, let buffer = try? SharedBuffer(byteCount: Int(byteCount)) else { return 0 }
        return lend(buffer)
    }

    static let addressOf: @convention(c) (Int64) -> Int = { token in
        lent.value(token).map(address(of:)) ?? 0
    }

    static let release: @convention(c) (Int64) -> Void = { token in
        _ = take(token)
    }
}
