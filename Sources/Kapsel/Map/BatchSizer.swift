/// Sizes batches of short jobs for about 4 ms of work each, from how long the batches so
/// far took (smoothed), growing at most fourfold at a time and never beyond `limit`: what
/// `map` and prefetching on daemons send.
package struct BatchSizer: Sendable {
    /// Jobs in the next batch.
    package private(set) var size = 1
    private let limit: Int
    private var itemNanoseconds: Double?

    /// A sizer starting at one job per batch.
    package init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// A batch of `count` jobs ran for `runTime` in its daemon.
    package mutating func record(runTime: Duration, count: Int) {
        guard count > 0, runTime >= .zero else { return }
        let (seconds, attoseconds) = runTime.components
        let perItem = max((Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(count), 50)
        let smoothed = itemNanoseconds.map { 0.5 * $0 + 0.5 * perItem } ?? perItem
        itemNanoseconds = smoothed
        size = min(max(1, Int((4_000_000 / smoothed).rounded())), min(limit, size * 4))
    }
}
