import Crypto
import Foundation
import KapselWire

/// A Python interpreter Kapsel can embed, identified by its executable. Kapsel never
/// modifies it: packages go into environments layered on it.
///
/// ```swift
/// let python = try PythonRuntime(executable: "/usr/bin/python3")
/// print(python.fingerprint)     // linux-x86_64-3.11.2-1f0c…
/// ```
public struct PythonRuntime: Codable, Sendable, Hashable {
    /// The interpreter's executable.
    public let executable: String
    /// Its version, e.g. `3.11.2`.
    public let version: String
    /// Its platform tag, e.g. `linux-x86_64`.
    public let platform: String
    /// The shared library (`libpython3.X.so`) a daemon loads.
    public let library: String
    /// `sys.base_prefix`: where its standard library lives.
    public let home: String

    /// Asks the interpreter at `executable` (through `sysconfig`) where its shared library
    /// is. Throws if it cannot run or was built without one (`--enable-shared`).
    public init(executable: String) throws {
        let script = """
            import sys, sysconfig, os
            libdir = sysconfig.get_config_var('LIBDIR') or ''
            names = [sysconfig.get_config_var(key) or '' for key in ('LDLIBRARY', 'INSTSONAME')]
            found = [os.path.join(libdir, name) for name in names if name and os.path.exists(os.path.join(libdir, name))]
            print(sys.version.split()[0]); print(sysconfig.get_platform())
            print(found[0] if sysconfig.get_config_var('Py_ENABLE_SHARED') and found else '')
            print(sys.base_prefix)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-I", "-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw PythonError(type: "RuntimeNotFound", message: "cannot run \(executable): \(error)")
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard process.terminationStatus == 0, lines.count >= 4 else {
            throw PythonError(type: "RuntimeNotFound", message: "\(executable) is not a working Python interpreter")
        }
        guard !lines[2].isEmpty, FileManager.default.fileExists(atPath: lines[2]) else {
            throw PythonError(type: "RuntimeNotEmbeddable", message: "\(executable) (Python \(lines[0])) has no shared library to embed: it was built without --enable-shared")
        }
        self.executable = executable
        self.version = lines[0]
        self.platform = lines[1]
        self.library = lines[2]
        self.home = lines[3]
    }

    /// Platform, version and a hash of the executable's path: what tells runtimes apart.
    public var fingerprint: String {
        let digest = SHA256.hash(data: Data(executable.utf8))
        return "\(platform)-\(version)-\(hexEncoded(digest.prefix(6)))"
    }
}
