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
            openDescriptors: countEntries("/proc/\(processID)/fd")
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

private func countEntries(_ directory: String) -> Int {
    guard let handle = opendir(directory) else { return 0 }
    defer { closedir(handle) }
    var count = 0
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
        if name != [46] && name != [46, 46] { count += 1 }
    }
    return count
}
