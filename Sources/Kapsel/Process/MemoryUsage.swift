#if canImport(Glibc)
import Glibc
#endif

/// Memory figures of a process, from `/proc/PID/status` (Linux), in kibibytes.
///
/// ```swift
/// let before = MemoryUsage.current()
/// ... 
/// print(MemoryUsage.current().residentAnonymousKB - before.residentAnonymousKB)
/// ```
public struct MemoryUsage: Sendable, Codable, Hashable {
    /// Private (anonymous) resident memory: the heap, stacks. `RssAnon`.
    public var residentAnonymousKB: Int
    /// Resident shared memory: mapped memfd/shm pages. `RssShmem`.
    public var residentSharedKB: Int
    /// Peak resident set size. `VmHWM`.
    public var peakResidentKB: Int
    /// Open file descriptors.
    public var openDescriptors: Int

    /// The figures of this process.
    public static func current() -> MemoryUsage {
        of(processID: getpid())!
    }

    /// The figures of process `processID`, or nil if it is not readable.
    public static func of(processID: Int32) -> MemoryUsage? {
        guard let status = readSmallFile("/proc/\(processID)/status") else { return nil }
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
        return MemoryUsage(
            residentAnonymousKB: field("RssAnon"), residentSharedKB: field("RssShmem"), peakResidentKB: field("VmHWM"),
            openDescriptors: ProcessInspection.directoryEntries("/proc/\(processID)/fd").count
        )
    }

    /// Resets the process's peak (`VmHWM`) to its current resident size, where the
    /// kernel allows it (`/proc/PID/clear_refs`), so a later `peakResidentKB` measures
    /// one phase.
    @discardableResult
    public static func resetPeak(processID: Int32 = getpid()) -> Bool {
        guard let file = fopen("/proc/\(processID)/clear_refs", "w") else { return false }
        defer { fclose(file) }
        return fputs("5", file) >= 0
    }
}

/// Looking at processes through `/proc` (Linux): what a host uses to check that its
/// daemons are gone, and benchmarks to count what is left behind.
public enum ProcessInspection {
    /// A process whose parent is the inspected one.
    public struct Child: Sendable, Hashable {
        /// The process id.
        public var pid: Int32
        /// Whether it has exited and waits to be reaped.
        public var isZombie: Bool
    }

    /// The children of process `parent` (this process by default), zombies included.
    public static func children(of parent: Int32 = getpid()) -> [Child] {
        directoryEntries("/proc").compactMap { name in
            guard let pid = Int32(name), let stat = readSmallFile("/proc/\(name)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent else { return nil }
            return Child(pid: pid, isZombie: fields[0] == "Z")
        }
    }

    /// The path of this process's executable (`/proc/self/exe`).
    public static func currentExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The command name of process `pid` (`/proc/<pid>/comm`), if it exists.
    public static func name(of pid: Int32) -> String? {
        readSmallFile("/proc/\(pid)/comm").map { String($0.prefix { $0 != "\n" }) }
    }

    /// Names in `directory`, without `.` and `..`.
    public static func directoryEntries(_ directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            // The name is read in place: a record is only as long as its name, so copying
            // the whole `dirent` (256 bytes of name) can read past the end of the mapping.
            let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            let name = String(cString: UnsafeRawPointer(entry).advanced(by: offset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

private func readSmallFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
