import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Mappings of pool slots a peer lends again and again, kept after their last view dies,
/// so that the next loan of the same slot is neither mapped nor faulted in anew.
///
/// A slot is recognised by its file (device and inode): the same memfd always holds the
/// same pages, so a kept mapping shows exactly what a fresh one would. At most
/// `maximumEntries` mappings and `maximumBytes` are kept (the oldest go first); all go
/// when the cache is purged (its connection closed) or deinitialised. A kept mapping
/// holds the slot's memory alive, which the lending peer's pool does anyway.
package final class MappingCache: Sendable {
    /// A file, by device and inode.
    package struct FileIdentity: Hashable, Sendable {
        let device: UInt64
        let inode: UInt64
    }

    /// A kept mapping: its address (as an integer, to be `Sendable`) and length.
    package struct Mapping: Sendable {
        let address: UInt
        let length: Int
        var base: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: address)! }
    }

    private struct State {
        var kept: [FileIdentity: Mapping] = [:]
        var order: [FileIdentity] = []
        var bytes = 0
        var purged = false
    }

    private let maximumEntries: Int
    private let maximumBytes: Int
    private let state = Mutex(State())

    /// A cache keeping at most `maximumEntries` mappings of at most `maximumBytes` in all.
    package init(maximumEntries: Int = 64, maximumBytes: Int = 256 << 20) {
        self.maximumEntries = maximumEntries
        self.maximumBytes = maximumBytes
    }

    deinit {
        purge()
    }

    /// The kept mapping of `file`, removed from the cache, if there is one of `length` bytes.
    func take(_ file: FileIdentity, length: Int) -> Mapping? {
        state.withLock { state in
            guard let mapping = state.kept[file], mapping.length == length else { return nil }
            state.kept[file] = nil
            state.order.removeAll { $0 == file }
            state.bytes -= mapping.length
            return mapping
        }
    }

    /// Keeps `mapping` of `file` for its next loan, unmapping whatever no longer fits
    /// (or `mapping` itself once the cache is purged).
    func keep(_ mapping: Mapping, of file: FileIdentity) {
        let unmap: [Mapping] = state.withLock { state in
            guard !state.purged, mapping.length <= maximumBytes else { return [mapping] }
            var evicted: [Mapping] = []
            if let previous = state.kept.updateValue(mapping, forKey: file) {
                evicted.append(previous)
                state.bytes -= previous.length
                state.order.removeAll { $0 == file }
            }
            state.order.append(file)
            state.bytes += mapping.length
            while state.order.count > maximumEntries || state.bytes > maximumBytes {
                let oldest = state.order.removeFirst()
                if let old = state.kept.removeValue(forKey: oldest) {
                    state.bytes -= old.length
                    evicted.append(old)
                }
            }
            return evicted
        }
        for mapping in unmap { munmap(mapping.base, mapping.length) }
    }

    /// Unmaps every kept mapping; mappings offered later are unmapped at once.
    package func purge() {
        let unmap: [Mapping] = state.withLock { state in
            state.purged = true
            defer {
                state.kept = [:]
                state.order = []
                state.bytes = 0
            }
            return Array(state.kept.values)
        }
        for mapping in unmap { munmap(mapping.base, mapping.length) }
    }

    /// Mappings kept now (tests).
    package var count: Int { state.withLock { $0.kept.count } }
}
