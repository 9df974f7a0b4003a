#if canImport(Glibc)
import Glibc
#endif

/// A local process's resident memory and CPU time, read from `/proc` (nil for a process
/// that is gone or on another machine).
struct ProcessStats: Sendable, Equatable {
    /// Resident memory, in bytes.
    var residentBytes: Int
    /// User plus system time used so far, in seconds.
    var cpuSeconds: Double

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// The figures of `pid` now.
    static func of(_ pid: Int32) -> ProcessStats? {
        guard let stat = read("/proc/\(pid)/stat"), let statm = read("/proc/\(pid)/statm") else { return nil }
        // The command name (field 2) may hold spaces: the fields after it follow its ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state (3), ..., utime (14), stime (15).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let pages = statm.split(separator: " ")
        guard pages.count > 1, let resident = Int(pages[1]) else { return nil }
        return ProcessStats(residentBytes: resident * pageSize, cpuSeconds: (user + system) / ticksPerSecond)
    }

    private static func read(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(descriptor, &bytes, bytes.count)
        guard count > 0 else { return nil }
        return String(decoding: bytes[..<count], as: UTF8.self)
    }
}
