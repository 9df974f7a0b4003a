/// Order statistics of a sample: what the bench reports, and what the hot-path probe
/// (`HotPathStages`) takes the median of.
package struct Samples {
    private var sorted: [Double]

    /// The order statistics of `values`.
    package init(_ values: [Double]) {
        sorted = values.sorted()
    }

    /// The value below which `fraction` of the sample lies (nearest rank).
    package func percentile(_ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    /// The middle value.
    package var median: Double { percentile(0.5) }

    /// The smallest value.
    package var lowest: Double { sorted.first ?? .nan }

    /// The largest value.
    package var highest: Double { sorted.last ?? .nan }

    /// Number of values.
    package var count: Int { sorted.count }
}

extension Duration {
    /// This duration in microseconds.
    package var microseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e6 + Double(attoseconds) / 1e12
    }

    /// This duration in milliseconds.
    package var milliseconds: Double { microseconds / 1000 }
}
