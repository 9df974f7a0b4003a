import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// The files through which storm jobs tell the storm what happened to them: a line per
/// run (the pid it ran in) and, for a job that wants to be killed from outside, a
/// request holding its pid. The directory belongs to the storm.
public struct RunLog: Sendable, Hashable, Codable {
    /// The directory.
    public let directory: String

    /// A log in `directory`, which must exist.
    public init(directory: String) {
        self.directory = directory
    }

    /// Records a run of job `id` in this process; returns its number (1 for the first).
    func recordRun(of id: Int) -> Int {
        append("\(getpid())\n", to: runsPath(id))
        return runs(of: id).count
    }

    /// The pids job `id` ran in, one per run, in order.
    public func runs(of id: Int) -> [Int32] {
        read(runsPath(id)).split(separator: "\n").compactMap { Int32($0) }
    }

    /// Asks the storm to kill this process with SIGKILL.
    func requestKill(for id: Int) {
        // Written aside and renamed: the storm never reads half a request.
        let path = "\(directory)/\(id).kill"
        append("\(getpid())\n", to: path + ".partial")
        rename(path + ".partial", path)
    }

    /// Kills the processes whose jobs asked for it, once each; returns how many.
    func killRequested() -> Int {
        var killed = 0
        for name in ProcessInspection.directoryEntries(directory) where name.hasSuffix(".kill") {
            let path = "\(directory)/\(name)"
            if let pid = Int32(read(path).prefix { $0 != "\n" }) { kill(pid, SIGKILL) }
            unlink(path)
            killed += 1
        }
        return killed
    }

    private func runsPath(_ id: Int) -> String { "\(directory)/\(id).runs" }

    private func append(_ text: String, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    private func read(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
