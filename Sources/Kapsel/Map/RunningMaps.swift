import Synchronization

/// The maps under way on a pool and how far each has come (`Daemons.runningMaps`), for
/// dashboards: each `MapDriver` registers when it starts and leaves when it ends.
final class RunningMaps: Sendable {
    private struct Entry {
        let start: ContinuousClock.Instant
        var progress: MapProgress
    }

    private let entries = Mutex<[Int: Entry]>([:])
    private let nextID = Atomic<Int>(0)

    /// A map of `total` items (nil: unknown) starts; returns its id.
    func start(total: Int?) -> Int {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        entries.withLock { $0[id] = Entry(start: .now, progress: MapProgress(completed: 0, total: total, failed: 0, elapsed: .zero)) }
        return id
    }

    /// Map `id` finished `completed` more items, `failed` of them failures.
    func advance(_ id: Int, by completed: Int, failed: Int) {
        entries.withLock { entries in
            entries[id]?.progress.completed += completed
            entries[id]?.progress.failed += failed
        }
    }

    /// Map `id` ended.
    func end(_ id: Int) {
        _ = entries.withLock { $0.removeValue(forKey: id) }
    }

    /// The maps under way, oldest first.
    var progress: [MapProgress] {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            entries.sorted { $0.key < $1.key }.map { _, entry in
                var progress = entry.progress
                progress.elapsed = now - entry.start
                return progress
            }
        }
    }
}
