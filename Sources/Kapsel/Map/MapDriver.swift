import DequeModule

/// Runs one map: pulls items from the input as room allows, submits them in batches,
/// and hands results to the consumer, in input order or as they complete.
///
/// ```
///  input ──pull──▶ batches (≤ maxJobsInFlight) ──submit──▶ dispatcher ──▶ daemons
///                                                   │ resolve (any thread)
///  consumer ◀── ready results ◀── take ◀── MapCompletions ◀┘
/// ```
///
/// Memory is bounded by the jobs in flight, whatever the number of items. Batches are
/// sized from the per-item time the daemons report (4 ms of work per batch), so slow
/// items go one per job to the first idle daemon and fast ones share round trips. A
/// batch whose daemon dies is run again item by item, so only the item that kills its
/// daemon fails.
final class MapDriver<Source: IteratorProtocol, Item: Job> {
    typealias Element = (index: Int, result: Result<Item.Output, JobError>)

    private struct Batch {
        let firstIndex: Int
        let jobs: JobBatch<Item>
    }

    private let daemons: Daemons
    private var source: Source
    private let makeJob: (Source.Element) -> Item
    private let order: MapOrder
    private let stopOnFirstError: Bool
    private let options: MapOptions
    private let meter: ProgressMeter?
    private let completions = MapCompletions<JobBatch<Item>.Outcome>()
    private var batches: [Int: Batch] = [:]
    private var batchByFirstIndex: [Int: Int] = [:]
    private var nextBatchID = 0
    private var pulled = 0
    private var exhausted = false
    private var stopped = false
    private var nextToDeliver = 0
    private var ready: Deque<Element> = []
    private var sizer = BatchSizer(limit: 4096)
    /// This map's entry in the pool's `RunningMaps`, until it ends.
    private var trackingID: Int?

    init(daemons: Daemons, source: Source, total: Int?, order: MapOrder, progress: Bool, stopOnFirstError: Bool, options: MapOptions, makeJob: @escaping (Source.Element) -> Item) {
        self.daemons = daemons
        self.source = source
        self.makeJob = makeJob
        self.order = order
        self.stopOnFirstError = stopOnFirstError
        self.options = options
        let wantsMeter = progress || options.progressHandler != nil
        meter = wantsMeter ? ProgressMeter(total: total, descriptor: progress ? options.progressDescriptor : nil, handler: options.progressHandler) : nil
        trackingID = daemons.maps.start(total: total)
    }

    deinit {
        for batch in batches.values { batch.jobs.cancel() }
        if let trackingID { daemons.maps.end(trackingID) }
    }

    /// The map ended: its progress is shown a last time and it leaves the running maps.
    private func finish() {
        meter?.finish()
        if let trackingID { daemons.maps.end(trackingID) }
        trackingID = nil
    }

    /// The next result, or nil when every item has been delivered (or the map stopped).
    func next(isolation: isolated (any Actor)? = #isolation) async -> Element? {
        while true {
            if let result = ready.popFirst() { return result }
            if stopped || (Task.isCancelled && stop()) { return nil }
            submitWhileRoom()
            guard !batches.isEmpty else {
                finish()
                return nil
            }
            let target = order == .input ? batchByFirstIndex[nextToDeliver] : nil
            guard let (id, outcome) = await completions.take(target) else {
                _ = stop()
                return nil
            }
            finished(id, outcome)
        }
    }

    /// Whether the map stopped, because an item failed with `stopOnFirstError`.
    var stoppedEarly: Bool { stopped }

    private func submitWhileRoom() {
        let limit = options.maxJobsInFlight ?? 2 * daemons.count
        while !exhausted, batches.count < limit {
            let size: Int = switch options.batching {
            case .fixed(let count): max(1, count)
            case .automatic: options.timeout == nil ? sizer.size : 1
            }
            var items: [Item] = []
            items.reserveCapacity(size)
            while items.count < size, let element = source.next() { items.append(makeJob(element)) }
            if items.count < size { exhausted = true }
            guard !items.isEmpty else { return }
            submit(items, firstIndex: pulled)
            pulled += items.count
        }
    }

    private func submit(_ items: [Item], firstIndex: Int) {
        let id = nextBatchID
        nextBatchID += 1
        let jobs = daemons.submitBatch(items, timeout: options.timeout, retries: options.retries)
        batches[id] = Batch(firstIndex: firstIndex, jobs: jobs)
        batchByFirstIndex[firstIndex] = id
        let completions = self.completions
        jobs.whenResolved { completions.put(id, $0) }
    }

    private func finished(_ id: Int, _ outcome: JobBatch<Item>.Outcome) {
        guard let batch = batches.removeValue(forKey: id) else { return }
        batchByFirstIndex.removeValue(forKey: batch.firstIndex)
        if case .automatic = options.batching, let runTime = outcome.runTime { sizer.record(runTime: runTime, count: batch.jobs.count) }
        deliver(outcome.results, from: batch.firstIndex)
    }

    private func deliver(_ results: [Result<Item.Output, JobError>], from firstIndex: Int) {
        var delivered = 0
        var failed = 0
        for (offset, result) in results.enumerated() {
            ready.append((firstIndex + offset, result))
            delivered += 1
            if case .failure = result {
                failed += 1
                if stopOnFirstError {
                    _ = stop()
                    break
                }
            }
        }
        if order == .input { nextToDeliver = firstIndex + results.count }
        meter?.advance(by: delivered, failed: failed)
        if let trackingID { daemons.maps.advance(trackingID, by: delivered, failed: failed) }
        if stopped { finish() }
    }

    /// Stops: no more items are pulled, and every job in flight is cancelled.
    private func stop() -> Bool {
        stopped = true
        exhausted = true
        for batch in batches.values { batch.jobs.cancel() }
        batches = [:]
        batchByFirstIndex = [:]
        return true
    }
}
