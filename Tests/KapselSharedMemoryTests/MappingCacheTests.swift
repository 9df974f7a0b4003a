import Testing
@testable import KapselSharedMemory

#if canImport(Glibc)
import Glibc
#endif

@Suite("Kept mappings of pool slots")
struct MappingCacheTests {
    /// Adopts a fresh descriptor of `segment`, as a receiver of it would.
    private func receive(_ segment: SharedSegment, cache: MappingCache) throws -> SharedSegment {
        try SharedSegment.adopt(descriptor: dup(segment.descriptor), minimumByteCount: segment.byteCount, cache: cache)
    }

    @Test func aSlotReceivedAgainReusesItsMappingAndSeesTheNewContents() throws {
        let cache = MappingCache()
        let slot = try SharedSegment.allocate(byteCount: 4096)
        slot.payload.storeBytes(of: 1, as: Int.self)
        var received: SharedSegment? = try receive(slot, cache: cache)
        let firstAddress = received!.payload
        #expect(received!.payload.load(as: Int.self) == 1)
        received = nil
        #expect(cache.count == 1)

        slot.payload.storeBytes(of: 2, as: Int.self)
        received = try receive(slot, cache: cache)
        #expect(cache.count == 0)
        #expect(received!.payload == firstAddress)
        #expect(received!.payload.load(as: Int.self) == 2)
    }

    @Test func theOldestMappingsGoWhenTheCacheIsFullAndAllGoOnPurge() throws {
        let cache = MappingCache(maximumEntries: 2)
        let slots = try (0..<3).map { _ in try SharedSegment.allocate(byteCount: 4096) }
        for slot in slots { _ = try receive(slot, cache: cache) }
        #expect(cache.count == 2)
        cache.purge()
        #expect(cache.count == 0)
        _ = try receive(slots[0], cache: cache)
        #expect(cache.count == 0, "a purged cache keeps nothing more")
    }
}
