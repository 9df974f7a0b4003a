import Kapsel
import KapselStress

/// W12: a host with two local daemons and one over TCP, killed with SIGKILL mid-work;
/// how long until every daemon has exited, and the shared memory left.
enum HostDeathBench {
    static func run() throws {
        guard let executable = ProcessInspection.currentExecutable() else { throw BenchError("cannot find this executable") }
        var exits: [String: [Double]] = ["local": [], "tcp": []]
        var leaked: [Double] = []
        for _ in 0..<5 {
            let watch = try HostDeath.killWorkingHost(executable: executable, arguments: ["stress", "host", "--local", "2", "--tcp", "1"])
            for kind in exits.keys {
                // A daemon still alive at the watch's limit counts as the limit.
                exits[kind, default: []].append(watch.slowestExitMilliseconds(of: kind) ?? 8_000)
            }
            leaked.append(Double(watch.leakedSharedMemoryKB))
        }
        for kind in ["local", "tcp"] {
            BenchReport.emit("W12", kind, "orphan_exit_ms", Samples(exits[kind] ?? []).median)
            BenchReport.emit("W12", kind, "leaked_shm_kB", leaked.max() ?? 0)
        }
    }
}
