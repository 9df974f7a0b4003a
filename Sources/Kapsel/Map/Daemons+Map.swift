extension Daemons {
    /// Runs `job(item)` for every item and returns one `Result` per item, in input order:
    /// a failing item never loses the others' results.
    ///
    /// ```swift
    /// let results = await daemons.map(1...10_000, progress: true) { Simulate(seed: $0) }
    /// ```
    ///
    /// Items go to the first idle daemon (slow items one per job, fast ones in batches
    /// sized automatically). With `stopOnFirstError` the map returns as soon as an item
    /// fails: every job still running is cancelled (and its daemon replaced if it does
    /// not stop, as with a time-out), nothing more is started, and the items that did not
    /// finish resolve as `.cancelled`. `progress` draws a progress bar on standard error.
    public func map<C: Collection, J: Job>(
        _ items: C, progress: Bool = false, stopOnFirstError: Bool = false, options: MapOptions = MapOptions(),
        isolation: isolated (any Actor)? = #isolation, _ job: @escaping (C.Element) -> J
    ) async -> [Result<J.Output, JobError>] {
        let driver = MapDriver(daemons: self, source: items.makeIterator(), total: items.count, order: .completion, progress: progress, stopOnFirstError: stopOnFirstError, options: options, makeJob: job)
        var results: [Result<J.Output, JobError>?] = Array(repeating: nil, count: items.count)
        var failedIndex: Int?
        while let (index, result) = await driver.next() {
            results[index] = result
            if case .failure = result, failedIndex == nil { failedIndex = index }
        }
        return results.map { result in
            result ?? .failure(JobError(.cancelled, "the map stopped after item \(failedIndex ?? -1) failed", jobType: J.jobTypeName))
        }
    }

    /// Runs `job(item)` for every item and returns the outputs in input order, or throws
    /// the first error, as soon as an item fails (the rest is cancelled).
    public func mapValues<C: Collection, J: Job>(
        _ items: C, progress: Bool = false, options: MapOptions = MapOptions(),
        isolation: isolated (any Actor)? = #isolation, _ job: @escaping (C.Element) -> J
    ) async throws(JobError) -> [J.Output] {
        var values: [J.Output] = []
        values.reserveCapacity(items.count)
        for result in await map(items, progress: progress, stopOnFirstError: true, options: options, job) {
            values.append(try result.get())
        }
        return values
    }

    /// Runs `job(item)` for every item of any sequence (even an endless one) and delivers
    /// `(index, result)` pairs as an asynchronous sequence, in input order or as items
    /// complete. Items are pulled only as room allows: memory does not grow with the input.
    public func mapStream<S: Sequence, J: Job>(
        _ items: S, order: MapOrder = .input, progress: Bool = false, stopOnFirstError: Bool = false,
        options: MapOptions = MapOptions(), _ job: @escaping (S.Element) -> J
    ) -> MapResults<J.Output> {
        let total = (items as? any Collection)?.count
        return MapResults {
            MapDriver(daemons: self, source: items.makeIterator(), total: total, order: order, progress: progress, stopOnFirstError: stopOnFirstError, options: options, makeJob: job)
        }
    }
}
