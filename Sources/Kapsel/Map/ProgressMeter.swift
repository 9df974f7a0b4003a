#if canImport(Glibc)
import Glibc
#endif

/// Shows a map's progress: a bar redrawn in place on a terminal (at most 10 times a
/// second), a plain line every few seconds on anything else, and/or a callback.
final class ProgressMeter {
    private let descriptor: Int32?
    private let isTerminal: Bool
    private let handler: (@Sendable (MapProgress) -> Void)?
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    private var lastShown: ContinuousClock.Instant
    private var progress: MapProgress

    /// Writes to `descriptor` when given; calls `handler` when given.
    init(total: Int?, descriptor: Int32?, handler: (@Sendable (MapProgress) -> Void)?) {
        self.descriptor = descriptor
        self.isTerminal = descriptor.map { isatty($0) == 1 } ?? false
        self.handler = handler
        start = clock.now
        lastShown = start - .seconds(60)
        progress = MapProgress(completed: 0, total: total, failed: 0, elapsed: .zero)
    }

    /// Items completed; shows progress if it is time to.
    func advance(by completed: Int, failed: Int) {
        progress.completed += completed
        progress.failed += failed
        let now = clock.now
        let interval: Duration = isTerminal || descriptor == nil ? .milliseconds(100) : .seconds(2)
        guard now - lastShown >= interval else { return }
        lastShown = now
        show(final: false)
    }

    /// Shows the final state.
    func finish() {
        show(final: true)
    }

    private func show(final: Bool) {
        progress.elapsed = clock.now - start
        handler?(progress)
        guard let descriptor else { return }
        let line = Self.render(progress)
        let text = isTerminal ? "\r\u{1B}[2K" + line + (final ? "\n" : "") : line + "\n"
        var bytes = Array(text.utf8)
        _ = write(descriptor, &bytes, bytes.count)
    }

    /// `[=========>          ] 450/1000  45%  1234 items/s  ETA 0:03  (2 failed)`
    static func render(_ progress: MapProgress) -> String {
        var parts: [String] = []
        if let total = progress.total, total > 0 {
            let width = 30
            let filled = min(width, progress.completed * width / total)
            let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
            parts.append("[\(bar)] \(progress.completed)/\(total) \(progress.completed * 100 / total)%")
        } else {
            parts.append("\(progress.completed) items")
        }
        parts.append("\(Int(progress.rate.rounded())) items/s")
        if let remaining = progress.remaining {
            let seconds = Int(remaining.components.seconds)
            parts.append("ETA \(seconds / 60):" + (seconds % 60 < 10 ? "0" : "") + "\(seconds % 60)")
        }
        if progress.failed > 0 { parts.append("(\(progress.failed) failed)") }
        return parts.joined(separator: "  ")
    }
}
