import Kapsel
import KapselR
import KapselTestJobs

#if canImport(Glibc)
import Glibc
#endif

/// What pools leave behind in their host, measured in a process where nothing else runs:
/// pools of crashing, timed-out and killed daemons, some holding shared memory, and R daemons.
enum LeakCheck {
    static func run() async throws -> Bool {
        // Process-lifetime resources (event loop threads, the supervisor) exist after a first
        // pool; finding R runs two programs of its own.
        try await withDaemons(1) { _ in }
        let runtime = try RRuntime()
        let before = MemoryUsage.current()
        for _ in 0..<3 {
            try await withDaemons(2) { daemons in
                for _ in 0..<5 { _ = await daemons.submit(Crash(.segfault, in: .running)).result }
                _ = await daemons.submit(Spin(), timeout: .milliseconds(50)).result
                let data = try SharedArray<Double>(repeating: 1, count: 1 << 20)
                _ = try await daemons.submit(SumAndDouble(input: data)).value
                _ = try await daemons.submit(Echo(1)).value
            }
            // A daemon killed while it holds three segments.
            try await withDaemons(1) { daemons in
                let pid = daemons.status().daemons[0].pid!
                let arrays = try (0..<3).map { _ in try SharedArray<Double>(repeating: 1, count: 4 << 20) }
                let holding = daemons.submit(HoldShared(arrays: arrays, milliseconds: 60_000))
                while (MemoryUsage.of(processID: pid)?.residentSharedKB ?? 0) < 90 << 10 { usleep(2_000) }
                kill(pid, SIGKILL)
                _ = await holding.result
            }
        }
        // R daemons: a session holding shared memory it was given, then R killing its
        // daemon with a segfault, and a fresh session in the replacement.
        try await withDaemons(1) { daemons in
            let r = try await daemons.rSession(RSession.Configuration(runtime: runtime))
            let tensor = try SharedTensor(try SharedArray<Double>(repeating: 2, count: 4 << 20), shape: [4 << 20], layout: .columnMajor)
            _ = try await r.call("assign", "kept", tensor, named: ["envir": RValue.call("globalenv")])
            _ = try? await r.eval("tools::pskill(Sys.getpid(), 11L)")
            let again = try await daemons.rSession(RSession.Configuration(runtime: runtime))
            _ = try await again.call("sum", tensor)
        }
        // Closing is asynchronous in places (a channel closes on its event loop, a reaped
        // daemon's pidfd after the reap): a leak is what is still open a moment later.
        var after = MemoryUsage.current()
        for _ in 0..<40 where after.openDescriptors > before.openDescriptors {
            try await Task.sleep(for: .milliseconds(50))
            after = MemoryUsage.current()
        }
        let children = ProcessInspection.children().count
        print("descriptors \(before.openDescriptors) -> \(after.openDescriptors)")
        print("shared memory \(before.residentSharedKB) kB -> \(after.residentSharedKB) kB")
        print("child processes \(children)")
        // Fewer than before is no leak: Foundation closes a pipe of its first child process lazily.
        return after.openDescriptors <= before.openDescriptors && after.residentSharedKB - before.residentSharedKB < 4 << 10 && children == 0
    }
}
