import KapselWire

/// Collects the shared memory a message carries while it is encoded: `SharedBuffer`s
/// (and the arrays and tensors built on them) by reference, and large plain arrays
/// copied once into new segments. Everything attached is frozen: the sender can no
/// longer write it in place.
package final class SharedAttachmentWriter: CompactAttachmentWriter {
    package let inlineLimit: Int
    package private(set) var storages: [SharedStorage] = []
    private var indexByStorage: [ObjectIdentifier: Int] = [:]

    package init(inlineLimit: Int) {
        self.inlineLimit = inlineLimit
    }

    package func attach(copying bytes: UnsafeRawBufferPointer) throws -> Int {
        let segment = try SharedSegment.allocate(byteCount: bytes.count)
        if bytes.count > 0 { segment.payload.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        return try append(SharedStorage(segment: segment))
    }

    /// The index of `buffer`'s memory among the attachments (attached once however
    /// many values share it).
    package func attach(_ buffer: SharedBuffer) throws -> Int {
        let key = ObjectIdentifier(buffer.storage)
        if let index = indexByStorage[key] { return index }
        let index = try append(buffer.storage)
        indexByStorage[key] = index
        return index
    }

    private func append(_ storage: SharedStorage) throws -> Int {
        guard storages.count < WireLimits.maxAttachments else {
            throw SharedMemoryError("a message can carry at most \(WireLimits.maxAttachments) shared memory attachments")
        }
        storage.freeze()
        storages.append(storage)
        return storages.count - 1
    }
}

/// The attachments a message arrived with, for decoding it.
package final class SharedAttachmentReader: CompactAttachmentReader, Sendable {
    package let storages: [SharedStorage]

    package init(storages: [SharedStorage]) {
        self.storages = storages
    }

    package func storage(at index: Int) throws -> SharedStorage {
        guard storages.indices.contains(index) else {
            throw SharedMemoryError("the value refers to attachment \(index), but the message has \(storages.count)")
        }
        return storages[index]
    }

    package func withAttachmentBytes<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let segment = try storage(at: index).segment
        return try body(UnsafeRawBufferPointer(start: segment.payload, count: segment.byteCount))
    }
}
