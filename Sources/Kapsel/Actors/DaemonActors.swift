import Distributed
import KapselWire
import Synchronization

/// The daemon side of the actor system: which daemon this is (for ids it names), and
/// the actors it keeps alive because the host holds references to them.
///
/// Each time the daemon sends a reference to the host, the actor's count grows; the
/// host's `releaseActors` says how many of those references it dropped. At zero the
/// daemon lets the actor go (it lives on only if something in the daemon holds it).
final class DaemonActors: Sendable {
    private struct State {
        var slot = 0
        var instance = 0
        var exported: [KapselActorID: (actor: any DistributedActor, count: Int)] = [:]
        var onCountChange: (@Sendable (Int) -> Void)?
    }

    private let state = Mutex(State())

    /// This daemon's index and instance (known once the host has welcomed it).
    var identity: (slot: Int, instance: Int) {
        state.withLock { ($0.slot, $0.instance) }
    }

    func setIdentity(slot: Int, instance: Int) {
        state.withLock {
            $0.slot = slot
            $0.instance = instance
        }
    }

    /// Actors the host holds references to now.
    var liveCount: Int {
        state.withLock { $0.exported.count }
    }

    /// Calls `observer` with the number of live actors whenever it changes.
    func observeCount(_ observer: @escaping @Sendable (Int) -> Void) {
        state.withLock { $0.onCountChange = observer }
    }

    func countChanged(_ count: Int) {
        state.withLock { $0.onCountChange }?(count)
    }

    /// A reference to `actor` goes to the host: keep the actor alive until released.
    func export(_ actor: any DistributedActor, permanently: Bool = false) {
        guard let id = actor.id as? KapselActorID else { return }
        state.withLock { state in
            let count = permanently ? Int.max / 2 : (state.exported[id]?.count ?? 0) + 1
            state.exported[id] = (actor, count)
        }
    }

    /// The host dropped these references.
    func release(_ releases: [ActorRelease]) {
        let dropped: [any DistributedActor] = state.withLock { state in
            releases.compactMap { release in
                let id = KapselActorID(release.actor)
                guard let entry = state.exported[id] else { return nil }
                let remaining = entry.count - Int(release.count)
                if remaining > 0 {
                    state.exported[id] = (entry.actor, remaining)
                    return nil
                }
                state.exported.removeValue(forKey: id)
                return entry.actor
            }
        }
        // The actors deinitialize here, outside the lock, if nothing else holds them.
        withExtendedLifetime(dropped) {}
    }
}
