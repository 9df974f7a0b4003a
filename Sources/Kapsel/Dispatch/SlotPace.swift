/// How long a slot's recent jobs took, and so how many the dispatcher may send it ahead of
/// the one it runs.
///
/// A daemon given one job at a time sits idle for a round trip between jobs; for short
/// jobs that idle time is most of the time. So a dispatcher slot whose jobs are short gets
/// a few more behind the running one — at most `budget` of predicted work in all, and never
/// more than `maximumDepth` jobs — and a slot whose jobs are long gets one at a time, so a
/// long job never holds others back that an idle daemon could run.
///
/// A job's service time is measured on the host, from the answer of the job before it on
/// the same slot to its own answer; when it was sent only then, the time includes the
/// round trip, which is what a lookahead hides. A job sent to an idle daemon is not
/// measured, so a caller who awaits each job before the next keeps depth one. The estimate rises at once with a longer job and falls gradually.
struct SlotPace {
    /// The predicted work a slot may hold beyond the job it runs.
    static let budget = Duration.milliseconds(1)
    /// The most jobs a slot may hold at once.
    static let maximumDepth = 16

    /// When the job now at the head of the slot's jobs in flight became the head, if known.
    private var headSince: ContinuousClock.Instant?
    /// The estimated time one job takes, once one was measured.
    private(set) var estimate: Duration?

    /// How many jobs the slot may hold now (at least one).
    var depth: Int {
        guard let estimate else { return 1 }
        guard estimate > .zero else { return Self.maximumDepth }
        let ahead = Int((Self.budget / estimate).rounded(.down))
        return 1 + min(max(ahead, 0), Self.maximumDepth - 1)
    }

    /// The head job answered at `now`.
    mutating func headFinished(at now: ContinuousClock.Instant) {
        defer { headSince = nil }
        guard let headSince else { return }
        let sample = now - headSince
        if let estimate, sample < estimate {
            self.estimate = (estimate * 3 + sample) / 4
        } else {
            estimate = sample
        }
    }

    /// A job became the head at `now`: the one before it answered.
    mutating func headStarted(at now: ContinuousClock.Instant) {
        headSince = now
    }

    /// The slot's jobs in flight were taken from it (its daemon ended): no head runs.
    mutating func headLost() {
        headSince = nil
    }
}
