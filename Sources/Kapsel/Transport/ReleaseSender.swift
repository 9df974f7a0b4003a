import KapselWire
import NIOCore
import Synchronization

/// Gives the peer back its pool slots as this side drops them, as release tokens.
///
/// A dropped slot's token waits to travel with the next message this side writes to the
/// peer (`takePending`, a request or a result), so a consumer dropping one item after
/// another neither wakes the connection's event loop nor writes a message per item.
/// When the peer waits for a slot it says so (`releasesWanted`): whatever waits goes at
/// once, or, if nothing does, the next token as soon as it is dropped. A token waits at
/// most `linger` for a message to travel with: a side that sends nothing more (a host
/// done with its work) still gives the slots back, so the peer can free a pool it replaced.
final class ReleaseSender: Sendable {
    private struct State {
        var pending: [UInt64] = []
        /// The peer waits for a slot and has had no token since it said so.
        var wanted = false
        /// A message with the pending tokens is scheduled on the event loop.
        var scheduled = false
        /// A send of whatever is pending after `linger` is scheduled.
        var lingering = false

        /// Whether a message must be scheduled now: the peer waits, tokens are ready, and no
        /// message for them is scheduled yet.
        mutating func scheduleIfWanted() -> Bool {
            guard wanted, !pending.isEmpty, !scheduled else { return false }
            scheduled = true
            return true
        }

        /// The pending tokens, taken; once some go, the peer's wish is answered.
        mutating func take() -> [UInt64] {
            guard !pending.isEmpty else { return [] }
            defer {
                pending = []
                wanted = false
            }
            return pending
        }
    }

    /// The connection's writer, until the connection closes (the writer holds the
    /// carrier that holds this: the link is dropped then).
    private let writer: Mutex<ConnectionWriter?>
    private let eventLoop: any EventLoop
    private let state = Mutex(State())

    init(writer: ConnectionWriter) {
        self.writer = Mutex(writer)
        self.eventLoop = writer.eventLoop
    }

    /// The connection closed: tokens dropped from now on go nowhere.
    func connectionClosed() {
        writer.withLock { $0 = nil }
    }

    /// How long a dropped slot's token waits for a message to travel with.
    static let linger = TimeAmount.milliseconds(2)

    /// Queues `token`; sends it at once if the peer waits for a slot, or after `linger`
    /// if no message takes it before.
    func add(_ token: UInt64) {
        let (schedule, linger) = state.withLock { state in
            state.pending.append(token)
            let schedule = state.scheduleIfWanted()
            let linger = !schedule && !state.lingering
            if linger { state.lingering = true }
            return (schedule, linger)
        }
        if schedule { scheduleSend() }
        if linger {
            eventLoop.scheduleTask(in: Self.linger) { [self] in
                state.withLock { $0.lingering = false }
                sendPending()
            }
        }
    }

    /// The peer waits for a slot: sends what is pending, or the next token dropped.
    func peerWantsReleases() {
        let schedule = state.withLock { state in
            state.wanted = true
            return state.scheduleIfWanted()
        }
        if schedule { scheduleSend() }
    }

    /// The tokens to send ahead of the message this side is about to write; they are
    /// no longer pending.
    func takePending() -> [UInt64] {
        state.withLock { $0.take() }
    }

    /// Sends what is pending from the event loop, outside whatever lock the caller holds
    /// (a slot is often dropped while its dropper holds one).
    private func scheduleSend() {
        eventLoop.execute { [self] in
            state.withLock { $0.scheduled = false }
            sendPending()
        }
    }

    /// Sends what is pending, if anything (on the event loop).
    private func sendPending() {
        let tokens = state.withLock { $0.take() }
        guard !tokens.isEmpty else { return }
        writer.withLock { $0 }?.send(.plain(.released(tokens: tokens)))
    }
}
