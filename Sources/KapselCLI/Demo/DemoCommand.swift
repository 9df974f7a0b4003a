import ArgumentParser
import Kapsel

/// `kapsel demo`: a tour of what daemons survive, printed for a person.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start daemons, run jobs in parallel, and survive a crash, a hang and an error."
    )

    @Option(help: "How many daemons to start.")
    var daemons = 2

    @Flag(help: "Then keep the pool working under a live dashboard in the browser, until Ctrl-C.")
    var dashboard = false

    func run() async throws {
        let clock = ContinuousClock()
        print("Kapsel demo: jobs run in separate daemon processes; nothing they do can take this process down.\n")
        let start = clock.now
        try await withDaemons(daemons) { pool in
            let pids = pool.status().daemons.compactMap(\.pid).map(String.init).joined(separator: ", ")
            print("Started \(pool.count) daemons in \(milliseconds(clock.now - start)) (pids \(pids)).\n")

            print("1. Eight simulations in parallel (mean of 200,000 normal draws each):")
            let simulations = (1...8).map { index in
                (index, pool.submit(Simulate(mean: Double(index), sd: 5, n: 200_000, seed: UInt64(index))))
            }
            for (index, handle) in simulations {
                let output = try await handle.value
                print("   Simulate(mean: \(index), sd: 5) -> \(rounded(output.estimate))   on daemon \(output.daemon)")
            }

            print("\n2. A job that throws:")
            let failing = await pool.submit(Simulate(mean: 0, sd: -1, n: 10, seed: 1)).result
            if case .failure(let error) = failing {
                print("   -> \(error.code): \(error.remoteErrorType ?? "?"): \(error.message)")
                print("      thrown at \(error.location ?? "?")")
            }

            print("\n3. A job that segfaults its daemon:")
            let crashed = await pool.submit(Segfault()).result
            if case .failure(let error) = crashed, let daemon = error.daemon {
                print("   -> \(error.code): \(error.termination.map(String.init(describing:)) ?? "?") on \(daemon)")
                await reportReplacement(of: daemon, in: pool)
            }

            print("\n4. A job that hangs, with a 200 ms time-out:")
            let hangStart = clock.now
            let hung = await pool.submit(Hang(), timeout: .milliseconds(200)).result
            if case .failure(let error) = hung, let daemon = error.daemon {
                print("   -> \(error.code) after \(milliseconds(clock.now - hangStart)); the job ignores cancellation, so its daemon is killed")
                await reportReplacement(of: daemon, in: pool)
            }

            print("\n5. Work goes on, on the replaced daemons:")
            let after = (1...4).map { pool.submit(Simulate(mean: 10, sd: 1, n: 100_000, seed: UInt64($0))) }
            for handle in after {
                let output = try await handle.value
                print("   Simulate(mean: 10, sd: 1) -> \(rounded(output.estimate))   on daemon \(output.daemon), instance \(output.instance)")
            }

            print("\nStatus:")
            print(pool.status().description.split(separator: "\n").map { "   " + $0 }.joined(separator: "\n"))
            if dashboard { try await DemoDashboard.run(on: pool) }
        }
        print("\nThe host survived a segfault, a hang and an error. All daemons are stopped.")
    }

    /// Waits until the daemon slot that held `daemon` runs a newer instance, and says so.
    private func reportReplacement(of daemon: DaemonIdentity, in pool: Daemons) async {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < .seconds(5) {
            if let slot = pool.status().daemons.first(where: { $0.index == daemon.index }), slot.online, slot.instance > daemon.instance {
                print("   -> daemon \(slot.index) replaced: instance \(slot.instance), pid \(slot.pid.map(String.init) ?? "?"), online \(milliseconds(clock.now - start)) later")
                return
            }
            try? await Task.sleep(for: .milliseconds(1))
        }
        print("   -> daemon \(daemon.index) was not replaced within 5 s")
    }

    private func rounded(_ value: Double) -> String {
        let scaled = (value * 1000).rounded() / 1000
        return String(scaled)
    }

    private func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000) ms"
    }
}
