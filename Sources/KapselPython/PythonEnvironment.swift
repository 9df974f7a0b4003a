import Foundation

/// A Python environment: packages of its own, layered on a runtime that Kapsel never
/// modifies. It lives in `ROOT/environments/NAME/`, with `config.json` (the runtime it
/// belongs to) and `packages/` (what `pip install --target` put there). Sessions started
/// with `sessionConfiguration` see its packages and no other environment's.
///
/// ```swift
/// let analysis = try PythonEnvironment("analysis", runtime: runtime)
/// try await daemons.manage(analysis) { environment in
///     try await environment.install(["./vendor/mytool-1.2-py3-none-any.whl"])
/// }
/// let python = try await daemons.spawn(PythonSession.self, configuration: analysis.sessionConfiguration)
/// ```
public struct PythonEnvironment: Sendable, Hashable {
    /// What `config.json` holds.
    public struct Configuration: Codable, Sendable, Hashable {
        /// The environment's name.
        public var name: String
        /// The runtime's fingerprint.
        public var runtimeFingerprint: String
        /// The runtime's executable.
        public var runtimeExecutable: String
    }

    /// The environment's name.
    public let name: String
    /// Its folder.
    public let directory: String
    /// The runtime it is layered on.
    public let runtime: PythonRuntime

    /// The default root: `~/.kapsel`.
    public static var defaultRoot: String {
        (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + "/.kapsel"
    }

    /// Opens environment `name` under `root`, creating it on `runtime` if it does not
    /// exist. Throws if it exists on another runtime (its packages may not fit this one).
    public init(_ name: String, runtime: PythonRuntime, root: String = PythonEnvironment.defaultRoot) throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }), !name.hasPrefix(".") else {
            throw PythonError(type: "EnvironmentError", message: "'\(name)' is not an environment name (letters, digits, - _ .)")
        }
        self.name = name
        self.directory = "\(root)/environments/\(name)"
        self.runtime = runtime
        let manager = FileManager.default
        let configPath = directory + "/config.json"
        if let data = manager.contents(atPath: configPath) {
            let existing = try JSONDecoder().decode(Configuration.self, from: data)
            guard existing.runtimeFingerprint == runtime.fingerprint else {
                throw PythonError(type: "EnvironmentError", message: "environment '\(name)' belongs to runtime \(existing.runtimeFingerprint) (\(existing.runtimeExecutable)), not \(runtime.fingerprint)")
            }
        } else {
            try manager.createDirectory(atPath: packageDirectory, withIntermediateDirectories: true)
            let configuration = Configuration(name: name, runtimeFingerprint: runtime.fingerprint, runtimeExecutable: runtime.executable)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(configuration).write(to: URL(fileURLWithPath: configPath))
        }
    }

    /// Where its packages go.
    public var packageDirectory: String { directory + "/packages" }

    /// The configuration of a session in this environment.
    public var sessionConfiguration: PythonSession.Configuration {
        PythonSession.Configuration(runtime: runtime, packagePaths: [packageDirectory])
    }

    /// Runs `pip install --target` into this environment with the runtime's own pip, in a
    /// process of its own; `arguments` are pip's (requirements, wheels, `--no-index`, ...).
    /// Throws with pip's output if it fails.
    public func install(_ arguments: [String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: runtime.executable)
        process.arguments = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "--target", packageDirectory] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = await Task.detached { String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }.value
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PythonError(type: "InstallError", message: "pip install \(arguments.joined(separator: " ")) failed in '\(name)':\n\(output)")
        }
    }
}
