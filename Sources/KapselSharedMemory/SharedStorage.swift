import Synchronization

/// What a `SharedBuffer` holds on to: a segment, whether it may still be written, and
/// what to do when the last view of it goes away.
///
/// Each allocation gets its own storage. A pool slot gets a new storage each time it is
/// handed out (the segment stays), and a segment received from another process gets a
/// storage whose release tells the sender (a drop token) when the sender lent it from a pool.
package final class SharedStorage: Sendable {
    package let segment: SharedSegment
    private let frozen: Atomic<Bool>
    private let onRelease: (@Sendable () -> Void)?
    /// The pool slot this storage leases, if any (to count holds by other processes).
    package let lease: SlotLease?

    package init(segment: SharedSegment, lease: SlotLease? = nil, onRelease: (@Sendable () -> Void)? = nil) {
        self.segment = segment
        self.frozen = Atomic(!segment.isWritable)
        self.lease = lease
        self.onRelease = onRelease
    }

    deinit {
        onRelease?()
    }

    /// Whether the bytes may no longer be written through this storage (they were sent
    /// to another process, exported, or received).
    package var isFrozen: Bool { frozen.load(ordering: .acquiring) }

    /// Makes the storage read-only for good.
    package func freeze() {
        frozen.store(true, ordering: .releasing)
    }
}
