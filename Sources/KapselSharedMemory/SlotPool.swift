import DequeModule
import Synchronization

/// Fixed-size slots of shared memory, recycled: for streaming many equal-sized items
/// without allocating for each.
///
/// ```swift
/// let pool = try SlotPool(slotByteCount: 800_000, slotCount: 8)
/// var slot = try await pool.acquireArray(of: Double.self, count: 100_000)  // waits while all 8 are in use
/// slot.withUnsafeMutableBufferPointer { produce(into: $0) }
/// return slot                                                     // e.g. a job's result
/// ```
///
/// A slot is free again only when every view of it is gone: every copy of the values
/// made from it in this process, and — when it was sent to another process — the
/// receiver's last view too (the receiver sends a release token back). A slot whose
/// receiver dies is freed with its connection. A freshly acquired slot holds whatever
/// its previous user left in it.
public final class SlotPool: Sendable {
    /// Bytes per slot.
    public let slotByteCount: Int
    /// Number of slots.
    public let slotCount: Int
    private let segments: [SharedSegment]
    private let state: Mutex<State>

    private struct State {
        var free: Deque<Int>
        /// Per slot: views alive in this process (0 or 1 lease), and holds by other processes.
        var leased: [Bool]
        var remoteHolds: [Int]
        var waiters: Deque<(id: UInt64, continuation: CheckedContinuation<Int, any Error>)> = []
        var nextWaiterID: UInt64 = 0
    }

    /// Allocates `slotCount` slots of `slotByteCount` bytes each.
    public init(slotByteCount: Int, slotCount: Int) throws {
        precondition(slotCount > 0 && slotByteCount >= 0, "a pool needs at least one slot")
        self.slotByteCount = slotByteCount
        self.slotCount = slotCount
        var segments: [SharedSegment] = []
        for _ in 0..<slotCount { segments.append(try SharedSegment.allocate(byteCount: slotByteCount)) }
        self.segments = segments
        self.state = Mutex(State(free: Deque(0..<slotCount), leased: Array(repeating: false, count: slotCount), remoteHolds: Array(repeating: 0, count: slotCount)))
    }

    /// Slots free right now.
    public var availableSlots: Int { state.withLock { $0.free.count } }

    /// A free slot, or nil if all are in use.
    public func tryAcquire() -> SharedBuffer? {
        let index: Int? = state.withLock { state in
            guard let index = state.free.popFirst() else { return nil }
            state.leased[index] = true
            return index
        }
        return index.map(buffer(for:))
    }

    /// A free slot, waiting while all are in use. Throws `CancellationError` if the
    /// waiting task is cancelled.
    public func acquire() async throws -> SharedBuffer {
        if let buffer = tryAcquire() { return buffer }
        let id = state.withLock { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        let index = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                let ready: Int? = state.withLock { state in
                    if let index = state.free.popFirst() {
                        state.leased[index] = true
                        return index
                    }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Int, any Error>? in
                guard let position = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: position).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
        return buffer(for: index)
    }

    /// A free slot viewed as `count` elements of `type`, waiting while all are in use.
    public func acquireArray<Element: BitwiseCopyable>(of type: Element.Type, count: Int) async throws -> SharedArray<Element> {
        try SharedArray(buffer: try await acquire(), count: count)
    }

    private func buffer(for index: Int) -> SharedBuffer {
        let lease = SlotLease(pool: self, index: index)
        let storage = SharedStorage(segment: segments[index], lease: lease) { [self] in
            self.release(index, local: true)
        }
        return SharedBuffer(storage: storage, offset: 0, count: slotByteCount)
    }

    /// Another process holds slot `index` until the returned hold is dropped.
    fileprivate func holdRemotely(_ index: Int) -> RemoteHold {
        state.withLock { $0.remoteHolds[index] += 1 }
        return RemoteHold(pool: self, index: index)
    }

    fileprivate func release(_ index: Int, local: Bool) {
        let waiter: CheckedContinuation<Int, any Error>? = state.withLock { state in
            if local { state.leased[index] = false } else { state.remoteHolds[index] -= 1 }
            guard !state.leased[index], state.remoteHolds[index] == 0 else { return nil }
            if let waiter = state.waiters.popFirst() {
                state.leased[index] = true
                return waiter.continuation
            }
            state.free.append(index)
            return nil
        }
        waiter?.resume(returning: index)
    }
}

/// The lease of one pool slot by one `SharedStorage`.
package final class SlotLease: Sendable {
    private let pool: SlotPool
    private let index: Int

    fileprivate init(pool: SlotPool, index: Int) {
        self.pool = pool
        self.index = index
    }

    /// Marks the slot as held by another process until the hold is dropped.
    package func holdRemotely() -> RemoteHold {
        pool.holdRemotely(index)
    }
}

/// A pool slot held by another process; dropping it (when the release token arrives,
/// or the connection ends) gives the slot back.
package final class RemoteHold: Sendable {
    private let pool: SlotPool
    private let index: Int

    fileprivate init(pool: SlotPool, index: Int) {
        self.pool = pool
        self.index = index
    }

    deinit {
        pool.release(index, local: false)
    }
}
