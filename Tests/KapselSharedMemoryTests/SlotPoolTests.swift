import Synchronization
import Testing
@testable import KapselSharedMemory

@Suite("Slot pools")
struct SlotPoolTests {
    @Test func tenThousandItemsThroughEightSlotsNeverReuseAHeldSlot() async throws {
        let pool = try SlotPool(slotByteCount: 1024, slotCount: 8)
        var kept: SharedArray<Int64>?
        var recent: [SharedArray<Int64>] = []
        var segmentsSeen: Set<ObjectIdentifier> = []
        for item in 0..<10_000 {
            var slot = try await pool.acquireArray(of: Int64.self, count: 128)
            segmentsSeen.insert(ObjectIdentifier(slot.buffer.storage.segment))
            slot.withUnsafeMutableBufferPointer { $0.initialize(repeating: Int64(item)) }
            if item == 3 { kept = slot }
            // A consumer a few items behind: up to 4 more slots in use at once.
            recent.append(slot)
            if recent.count > 4 { recent.removeFirst() }
            if let kept, item % 97 == 0 {
                #expect(kept.allSatisfy { $0 == 3 }, "a slot was reused while a view of it was alive")
            }
        }
        #expect(kept?.allSatisfy { $0 == 3 } == true)
        #expect(segmentsSeen.count == 8)
        #expect(pool.availableSlots == 8 - 1 - recent.count)
        kept = nil
        recent = []
        #expect(pool.availableSlots == 8)
    }

    @Test func acquireWaitsForAFreeSlotAndCanBeCancelled() async throws {
        let pool = try SlotPool(slotByteCount: 16, slotCount: 1)
        var held: SharedBuffer? = try await pool.acquire()
        #expect(pool.tryAcquire() == nil)
        let waiter = Task { try await pool.acquire().count }
        try await Task.sleep(for: .milliseconds(50))
        held = nil
        #expect(try await waiter.value == 16)

        let blocked = try await pool.acquire()
        let cancelled = Task { try await pool.acquire() }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        withExtendedLifetime(blocked) {}
        withExtendedLifetime(held) {}
    }

    @Test func aSlotHeldByAnotherProcessStaysBusyUntilItsHoldIsDropped() async throws {
        let pool = try SlotPool(slotByteCount: 8, slotCount: 1)
        let asked = Mutex(0)
        var hold: RemoteHold?
        do {
            let buffer = try await pool.acquire()
            hold = buffer.storage.lease?.holdRemotely { asked.withLock { $0 += 1 } }
        }
        #expect(pool.availableSlots == 0)
        #expect(asked.withLock { $0 } == 0, "the holder is not asked while nobody waits")
        #expect(pool.tryAcquire() == nil)
        #expect(asked.withLock { $0 } == 1, "a failed try asks the holder for the slot back")
        let waiter = Task { try await pool.acquire().count }
        while asked.withLock({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(1)) }
        hold = nil
        #expect(try await waiter.value == 8, "the waiter gets the slot when the hold is dropped")
        #expect(pool.availableSlots == 1)
        withExtendedLifetime(hold) {}
    }

    @Test func copyingOutOfASlotReleasesIt() async throws {
        let pool = try SlotPool(slotByteCount: 8, slotCount: 1)
        var array = try await pool.acquireArray(of: Int.self, count: 1)
        let frozen = SharedAttachmentWriter(inlineLimit: 0)
        _ = try frozen.attach(array.buffer)
        #expect(pool.availableSlots == 0)
        array[0] = 1
        // The write copied the frozen slot into new memory; only the writer's reference holds the slot now.
        #expect(array.buffer.storage.lease == nil)
        _ = consume frozen
        #expect(pool.availableSlots == 1)
    }
}
