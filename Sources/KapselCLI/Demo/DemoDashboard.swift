import Dispatch
import Kapsel
import KapselDashboard

#if canImport(Glibc)
import Glibc
#endif

/// `kapsel demo --dashboard`: after the demo, the pool goes on working — a stream of
/// simulations, a `map` with progress, a daemon that segfaults now and then — under a
/// live dashboard, until Ctrl-C.
enum DemoDashboard {
    static func run(on pool: Daemons) async throws {
        let dashboard = try await Dashboard.start(pool)
        print("\nDashboard: \(dashboard.url)  (open it in a browser; Ctrl-C stops)")
        fflush(nil)
        let load = Task { await keepBusy(pool) }
        await waitForInterrupt()
        load.cancel()
        await load.value
        await dashboard.stop()
    }

    /// Jobs, maps and the odd crash, until cancelled.
    private static func keepBusy(_ pool: Daemons) async {
        var round: UInt64 = 0
        while !Task.isCancelled {
            round += 1
            let items = (0..<5_000).map { UInt64($0) + round * 10_000 }
            _ = await pool.map(items) { Simulate(mean: 1, sd: 1, n: 2_000, seed: $0) }
            if round % 4 == 0 { _ = await pool.submit(Segfault()).result }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Returns on SIGINT or SIGTERM.
    private static func waitForInterrupt() async {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let (interrupts, continuation) = AsyncStream<Void>.makeStream()
        let sources = [SIGINT, SIGTERM].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield() }
            source.resume()
            return source
        }
        for await _ in interrupts { break }
        for source in sources { source.cancel() }
    }
}
