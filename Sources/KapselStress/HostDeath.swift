import CKapselShim
import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// Killing a working host (a `HostUnderFire` program) with SIGKILL and watching its
/// daemons go: what the host-death test checks and W12 measures.
///
/// While it watches, this process is a child subreaper, so the host's orphaned daemons
/// are re-parented to it: it sees them exit and reaps them.
public enum HostDeath {
    /// Runs `body` as a child subreaper: orphans of descendants that die meanwhile become
    /// this process's children. Afterwards it stops being one and reaps the adopted
    /// children that have exited (a killed host's `sh`, its daemons), so that nothing it
    /// adopted lingers as a zombie of the test runner.
    public static func adoptingOrphans<T>(_ body: () throws -> T) throws -> T {
        let ownChildren = Set(ProcessInspection.children().map(\.pid))
        guard kapsel_set_child_subreaper(1) == 0 else { throw HostError(description: "cannot become a child subreaper: errno \(errno)") }
        defer {
            _ = kapsel_set_child_subreaper(0)
            for child in ProcessInspection.children() where child.isZombie && !ownChildren.contains(child.pid) {
                var status: Int32 = 0
                waitpid(child.pid, &status, 0)
            }
        }
        return try body()
    }

    /// What was seen.
    public struct Watch: Sendable {
        /// The host's daemons as it printed them: `local`, `tcp` or `ssh`, and the pid.
        public var daemons: [(kind: String, pid: Int32)]
        /// The other processes watched (e.g. the SSH sessions).
        public var others: [Int32]
        /// When each watched process had gone, after the kill.
        public var exitTimes: [Int32: Duration]
        /// Shared memory files (`/dev/shm`) left beyond those before the host started, kB.
        public var leakedSharedMemoryKB: Int
        /// Everything the host printed before `ready`.
        public var hostOutput: [String]

        /// Milliseconds until the daemons of `kind` had all gone, or nil if one had not
        /// within the limit.
        public func slowestExitMilliseconds(of kind: String) -> Double? {
            let times = daemons.filter { $0.kind == kind }.map { exitTimes[$0.pid] }
            guard !times.isEmpty, times.allSatisfy({ $0 != nil }) else { return nil }
            return times.compactMap { $0 }.map { Double($0.components.seconds) * 1e3 + Double($0.components.attoseconds) / 1e15 }.max()
        }
    }

    /// The error when the host cannot be started or ends before it is ready.
    public struct HostError: Error, CustomStringConvertible {
        /// What went wrong.
        public var description: String
    }

    /// Starts `executable` with `arguments` (a host that prints `<kind> <pid>` lines and
    /// `ready`), lets it work for `working`, kills it with SIGKILL, and watches its daemons
    /// and the processes `others()` names (asked once the host is ready) for up to `limit`.
    public static func killWorkingHost(
        executable: String, arguments: [String], working: Duration = .milliseconds(300), limit: Duration = .seconds(8),
        others: () -> [Int32] = { [] }
    ) throws -> Watch {
        try adoptingOrphans { try watchKilledHost(executable: executable, arguments: arguments, working: working, limit: limit, others: others) }
    }

    private static func watchKilledHost(
        executable: String, arguments: [String], working: Duration, limit: Duration, others: () -> [Int32]
    ) throws -> Watch {
        let sharedBefore = sharedMemoryFiles()
        let (host, output) = try spawnReadingOutput(executable, arguments)
        let lines = readLines(from: output, until: "ready")
        close(output)
        guard lines.last == "ready" else {
            kill(host, SIGKILL)
            var status: Int32 = 0
            waitpid(host, &status, 0)
            throw HostError(description: "the host ended before it was ready; it printed: \(lines)")
        }
        let daemons = lines.compactMap { line -> (kind: String, pid: Int32)? in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let pid = Int32(parts[1]) else { return nil }
            return (String(parts[0]), pid)
        }
        let watched = others()
        pause(working)

        let clock = ContinuousClock()
        let start = clock.now
        kill(host, SIGKILL)
        var status: Int32 = 0
        waitpid(host, &status, 0)
        let pids = daemons.map(\.pid) + watched
        var gone: [Int32: Duration] = [:]
        while gone.count < pids.count && clock.now - start < limit {
            for pid in pids where gone[pid] == nil {
                // An orphan is this process's child now: waitpid reaps it once it exited.
                if waitpid(pid, &status, WNOHANG) == pid || kill(pid, 0) != 0 { gone[pid] = clock.now - start }
            }
            usleep(1_000)
        }
        let namesBefore = Set(sharedBefore.map(\.name))
        let leaked = sharedMemoryFiles().filter { !namesBefore.contains($0.name) }.reduce(0) { $0 + $1.kB }
        return Watch(daemons: daemons, others: watched, exitTimes: gone, leakedSharedMemoryKB: leaked, hostOutput: lines)
    }

    /// Sleeps `duration` on this thread.
    private static func pause(_ duration: Duration) {
        let microseconds = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        usleep(UInt32(max(0, microseconds)))
    }

    /// The files in `/dev/shm` with their size in kB.
    private static func sharedMemoryFiles() -> Set<SharedFile> {
        Set(ProcessInspection.directoryEntries("/dev/shm").map { name in
            var info = stat()
            return SharedFile(name: name, kB: stat("/dev/shm/" + name, &info) == 0 ? Int(info.st_blocks) / 2 : 0)
        })
    }

    /// A file in `/dev/shm`.
    private struct SharedFile: Hashable {
        var name: String
        var kB: Int
    }

    /// Starts `executable` with its standard output into a pipe; returns its pid and the
    /// pipe's reading end.
    private static func spawnReadingOutput(_ executable: String, _ arguments: [String]) throws -> (pid_t, Int32) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw HostError(description: "pipe: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[1], STDOUT_FILENO)
        posix_spawn_file_actions_addclose(&actions, ends[0])
        posix_spawn_file_actions_addclose(&actions, ends[1])
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(ends[1])
        guard result == 0 else {
            close(ends[0])
            throw HostError(description: "cannot start \(executable): errno \(result)")
        }
        return (pid, ends[0])
    }

    /// The lines read from `descriptor` up to and including `last`, or all until it ends.
    private static func readLines(from descriptor: Int32, until last: String) -> [String] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
            if let end = lines.firstIndex(of: last) { return Array(lines[...end]) }
            let count = read(descriptor, &chunk, chunk.count)
            if count <= 0 { return lines }
            bytes += chunk[0..<count]
        }
    }
}
