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
/// receiver dies is freed with its connection. When no slot is free, the processes
/// holding slots are asked for the tokens of those they have dropped (they may keep
/// them to send with their next message otherwise). A freshly acquired slot holds
/// whatever its previous user left in it.
public final class SlotPool: Sendable {
    /// Bytes per slot.
    public let slotByteCount: Int
    /// Number of slots.
    public let slotCount: Int
    private let segments: [SharedSegment]
    private let state: Mutex<State>
    /// Unique among this process's pools, never reused.
    fileprivate let id = SlotPool.nextID.wrappingAdd(1, ordering: .relaxed).oldValue
    private static let nextID = Atomic<UInt64>(1)
    /// Called when the pool is gone, by whoever named its slots to a peer; by key.
    private let goneCallbacks = Mutex<[ObjectIdentifier: @Sendable () -> Void]>([:])

    private struct State {
        var free: Deque<Int>
        /// Per slot: views alive in this process (0 or 1 lease), and holds by other
        /// processes, each with how to ask its process for the slot back.
        var leased: [Bool]
        var remoteHolds: [[(id: UInt64, askBack: @Sendable () -> Void)]]
        var nextHoldID: UInt64 = 0
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
        self.state = Mutex(State(free: Deque(0..<slotCount), leased: Array(repeating: false, count: slotCount), remoteHolds: Array(repeating: [], count: slotCount)))
    }

    deinit {
        for callback in goneCallbacks.withLock({ $0.values }) { callback() }
    }

    /// Slots free right now.
    public var availableSlots: Int { state.withLock { $0.free.count } }

    /// A free slot, or nil if all are in use (then the processes holding slots are asked
    /// for those they have dropped).
    public func tryAcquire() -> SharedBuffer? {
        let index: Int? = state.withLock { state in
            guard let index = state.free.popFirst() else { return nil }
            state.leased[index] = true
            return index
        }
        guard let index else {
            askHoldersBack()
            return nil
        }
        return buffer(for: index)
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
                if let ready { continuation.resume(returning: ready) } else { askHoldersBack() }
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
            self.release(index, holdID: nil)
        }
        return SharedBuffer(storage: storage, offset: 0, count: slotByteCount)
    }

    /// Another process holds slot `index` until the returned hold is dropped; `askBack`
    /// asks that process for the slots it has dropped and not yet given back.
    fileprivate func holdRemotely(_ index: Int, askBack: @escaping @Sendable () -> Void) -> RemoteHold {
        let id = state.withLock { state in
            defer { state.nextHoldID += 1 }
            state.remoteHolds[index].append((state.nextHoldID, askBack))
            return state.nextHoldID
        }
        return RemoteHold(pool: self, index: index, id: id)
    }

    /// Drops this process's lease of slot `index` (`holdID` nil) or a remote hold of it.
    fileprivate func release(_ index: Int, holdID: UInt64?) {
        let (waiter, starved): (CheckedContinuation<Int, any Error>?, Bool) = state.withLock { state in
            if let holdID {
                state.remoteHolds[index].removeAll { $0.id == holdID }
            } else {
                state.leased[index] = false
            }
            guard !state.leased[index], state.remoteHolds[index].isEmpty else {
                return (nil, holdID != nil && !state.waiters.isEmpty)
            }
            if let waiter = state.waiters.popFirst() {
                state.leased[index] = true
                return (waiter.continuation, !state.waiters.isEmpty)
            }
            state.free.append(index)
            return (nil, false)
        }
        waiter?.resume(returning: index)
        if starved { askHoldersBack() }
    }

    fileprivate func whenGone(key: ObjectIdentifier, _ callback: @escaping @Sendable () -> Void) {
        goneCallbacks.withLock { $0[key] = callback }
    }

    /// Asks every process holding a slot for those it has dropped.
    private func askHoldersBack() {
        let askers = state.withLock { state in state.remoteHolds.flatMap { $0.map(\.askBack) } }
        for askBack in askers { askBack() }
    }
}

/// One slot of one pool, unique in this process for as long as it runs.
package struct SlotIdentity: Hashable, Sendable {
    /// The pool's id.
    package let pool: UInt64
    /// The slot's index in its pool.
    package let index: Int

    /// Slot `index` of the pool with id `pool`.
    package init(pool: UInt64, index: Int) {
        self.pool = pool
        self.index = index
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

    /// Which slot this is.
    package var slot: SlotIdentity { SlotIdentity(pool: pool.id, index: index) }

    /// Calls `callback` when the slot's pool is gone, from the thread that drops it; a
    /// later call with the same `key` (for any slot of the pool) replaces it.
    package func whenPoolGone(key: ObjectIdentifier, _ callback: @escaping @Sendable () -> Void) {
        pool.whenGone(key: key, callback)
    }

    /// Marks the slot as held by another process until the hold is dropped; `askBack`
    /// asks that process for slots it has dropped, when the pool has none free.
    package func holdRemotely(askBack: @escaping @Sendable () -> Void) -> RemoteHold {
        pool.holdRemotely(index, askBack: askBack)
    }
}

/// A pool slot held by another process; dropping it (when the release token arrives,
/// or the connection ends) gives the slot back.
package final class RemoteHold: Sendable {
    private let pool: SlotPool
    private let index: Int
    private let id: UInt64

    fileprivate init(pool: SlotPool, index: Int, id: UInt64) {
        self.pool = pool
        self.index = index
        self.id = id
    }

    deinit {
        pool.release(index, holdID: id)
    }
}
