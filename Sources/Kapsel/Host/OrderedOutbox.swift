import DequeModule
import Synchronization

/// What goes out on one connection, written in the order it was queued whichever
/// threads queue and flush it.
///
/// The dispatcher decides under its lock what each daemon is sent, and carries it out
/// after releasing the lock, on whatever thread made the decision: a submitting task,
/// an event loop, a timer. Two decisions about one daemon made one after the other on
/// two threads (its welcome, then the job a submitter hands it the moment it is
/// online) would otherwise race to the connection. So items are queued under the
/// dispatcher's lock, and written after it by one thread at a time: a flush that finds
/// another under way returns at once, and that one writes the newcomer's items too.
final class OrderedOutbox<Item: Sendable>: Sendable {
    private struct State: ~Copyable {
        var items: Deque<Item> = []
        var writing = false
    }

    private let state = Mutex(State())

    init() {}

    /// Queues `item` behind everything queued before it.
    func enqueue(_ item: Item) {
        state.withLock { $0.items.append(item) }
    }

    /// Writes what is queued with `write`, oldest first, unless another thread is at it
    /// (which then writes it). `write` runs outside the outbox's lock, so it may queue
    /// and flush again: what it queues is written after what it is writing.
    func flush(_ write: (Item) -> Void) {
        let claimed = state.withLock { state in
            if state.writing { return false }
            state.writing = true
            return true
        }
        guard claimed else { return }
        while let item = next() { write(item) }
    }

    /// The oldest queued item; when there is none, the writer's turn ends.
    private func next() -> Item? {
        state.withLock { state in
            if let item = state.items.popFirst() { return item }
            state.writing = false
            return nil
        }
    }
}
