import Crypto
import Foundation
import KapselWire

/// An installation of R that Kapsel can embed — any R built as a shared library
/// (`lib/libR.so` under its home). Kapsel never writes to it: packages go into
/// environments layered on it (`REnvironment`).
///
/// ```swift
/// let runtime = try RRuntime()                       // R_HOME, or what `R RHOME` says
/// let other = try RRuntime(home: "/opt/R/4.4.1/lib/R")
/// print(runtime.version, runtime.fingerprint)        // 4.2.2 x86_64-pc-linux-gnu-4.2.2-…
/// ```
public struct RRuntime: Codable, Sendable, Hashable {
    /// `R.home()`: where R's library, packages and settings live.
    public let home: String
    /// The shared library a daemon loads.
    public let library: String
    /// R's version, e.g. `4.2.2`.
    public let version: String
    /// R's platform, e.g. `x86_64-pc-linux-gnu`.
    public let platform: String

    /// The R whose home is `home` (its `R.home()`). Throws if it has no shared library to
    /// embed or does not run.
    public init(home: String) throws {
        let library = home + "/lib/libR.so"
        guard FileManager.default.fileExists(atPath: library) else {
            throw RError("RuntimeNotEmbeddable", "\(home) has no lib/libR.so: this R was not built as a shared library (configure --enable-R-shlib), or \(home) is not R's home")
        }
        let output = try Self.run(home + "/bin/Rscript", ["--vanilla", "-e", #"cat(paste(R.version$major, R.version$minor, sep = "."), R.version$platform, sep = "\n")"#])
        let lines = output.split(separator: "\n").map(String.init).suffix(2).map { $0 }
        guard lines.count == 2 else { throw RError("RuntimeNotFound", "R at \(home) did not say its version: \(output)") }
        self.home = home
        self.library = library
        self.version = lines[0]
        self.platform = lines[1]
    }

    /// The R of this machine: `R_HOME` if set, otherwise what `R RHOME` (the `R` on the
    /// `PATH`) answers.
    public init() throws {
        if let home = ProcessInfo.processInfo.environment["R_HOME"], !home.isEmpty {
            try self.init(home: home)
            return
        }
        let home = try Self.run("/usr/bin/env", ["R", "RHOME"]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !home.isEmpty else { throw RError("RuntimeNotFound", "`R RHOME` gave no answer; set R_HOME") }
        try self.init(home: home)
    }

    /// Platform, version and a hash of the home: what tells runtimes apart.
    public var fingerprint: String {
        let digest = SHA256.hash(data: Data(home.utf8))
        return "\(platform)-\(version)-\(hexEncoded(digest.prefix(6)))"
    }

    /// The runtime's own `R` program (for `R CMD INSTALL` and friends).
    var program: String { home + "/bin/R" }

    /// Runs `executable` with `arguments`; what it printed (standard output and error
    /// together), or an error with it when it fails.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            throw RError("RuntimeNotFound", "cannot run \(executable): \(error)")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RError("CommandFailed", "\(executable) \(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus)):\n\(text)")
        }
        return text
    }
}
