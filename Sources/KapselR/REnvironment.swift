import Foundation

/// An R environment: a library of packages of its own, layered on a runtime that Kapsel
/// never writes to. It lives in `ROOT/r/environments/NAME/`, with `config.json` (the
/// runtime it belongs to) and `Rlib/` (its library, put first on `.libPaths()` in its
/// sessions). Sessions started with `sessionConfiguration` see its packages and no other
/// environment's.
///
/// ```swift
/// let mrp = try REnvironment("mrp", runtime: runtime)
/// try await mrp.install(packageAt: "./vendor/mrpkit_1.2.tar.gz")
/// let r = try await daemons.rSession(mrp.sessionConfiguration)
/// ```
public struct REnvironment: Sendable, Hashable {
    /// What `config.json` holds.
    public struct Configuration: Codable, Sendable, Hashable {
        /// The environment's name.
        public var name: String
        /// The runtime's fingerprint.
        public var runtimeFingerprint: String
        /// The runtime's home.
        public var runtimeHome: String
    }

    /// The environment's name.
    public let name: String
    /// Its folder.
    public let directory: String
    /// The runtime it is layered on.
    public let runtime: RRuntime

    /// The default root: `~/.kapsel`.
    public static var defaultRoot: String {
        (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + "/.kapsel"
    }

    /// Opens environment `name` under `root`, creating it on `runtime` if it does not
    /// exist. Throws if it exists on another runtime (its packages may not fit this one).
    public init(_ name: String, runtime: RRuntime, root: String = REnvironment.defaultRoot) throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }), !name.hasPrefix(".") else {
            throw RError("EnvironmentError", "'\(name)' is not an environment name (letters, digits, - _ .)")
        }
        self.name = name
        self.directory = "\(root)/r/environments/\(name)"
        self.runtime = runtime
        let configPath = directory + "/config.json"
        if let data = FileManager.default.contents(atPath: configPath) {
            let existing = try JSONDecoder().decode(Configuration.self, from: data)
            guard existing.runtimeFingerprint == runtime.fingerprint else {
                throw RError("EnvironmentError", "environment '\(name)' belongs to R \(existing.runtimeFingerprint) (\(existing.runtimeHome)), not \(runtime.fingerprint)")
            }
        } else {
            try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
            let configuration = Configuration(name: name, runtimeFingerprint: runtime.fingerprint, runtimeHome: runtime.home)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(configuration).write(to: URL(fileURLWithPath: configPath))
        }
    }

    /// The environment's library, where its packages go.
    public var library: String { directory + "/Rlib" }

    /// The configuration of a session in this environment.
    public var sessionConfiguration: RSession.Configuration {
        RSession.Configuration(runtime: runtime, libraryPaths: [library])
    }

    /// The packages installed in the environment's library.
    public var packages: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: library)) ?? []).filter { !$0.hasPrefix(".") && !$0.hasPrefix("00LOCK") }.sorted()
    }

    /// Installs the package in `tarball` (a source package, as `R CMD build` makes) into
    /// this environment, with the runtime's own `R CMD INSTALL`, in a process of its own:
    /// no network, and nothing written outside the environment. Its dependencies must be
    /// in the environment or the runtime already. Throws with R's output if it fails.
    public func install(packageAt tarball: String) async throws {
        let program = runtime.program
        let library = self.library
        try await Task.detached {
            _ = try RRuntime.run(program, ["CMD", "INSTALL", "--no-multiarch", "--library=\(library)", tarball], environment: ["R_LIBS": library, "R_LIBS_USER": library])
        }.value
    }
}
