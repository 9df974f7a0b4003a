#if canImport(Glibc)
import Glibc
#endif

/// Starts daemons through a shell command: the plug-in point for resource managers,
/// SSH, containers. Kapsel brings `CommandTemplate` and `SSHLaunch`; write your own for
/// anything else and pass it as `DaemonOptions.launch = .custom(myLauncher)`.
///
/// ```swift
/// struct Docker: Launcher {
///     func shellCommand(for daemon: DaemonToLaunch) -> String {
///         "printf '%s\\n' \"$KAPSEL_SECRET\" | docker run -i --rm --network host worker "
///             + daemon.remoteCommandLine(executable: "/app/worker")
///     }
/// }
/// ```
public protocol Launcher: Sendable {
    /// The shell command that starts `daemon`. It runs under `/bin/sh -c` as a child of
    /// the host, with the daemon's settings — the secret included — in its environment;
    /// its exit ends the daemon's slot (which is then relaunched, like a crashed daemon).
    func shellCommand(for daemon: DaemonToLaunch) -> String

    /// A shell command run (like `shellCommand`, and waited for) after the launch
    /// command of `daemon` ended, however it ended — killed included — to release what
    /// it may have left behind: a resource manager's job (`scancel --name ...`), a
    /// container. Nil (the default): nothing to release.
    func cleanupCommand(for daemon: DaemonToLaunch) -> String?

    /// What the launcher is, for errors: `Slurm (partition debug)`.
    var launcherName: String { get }
}

extension Launcher {
    /// Nothing to release.
    public func cleanupCommand(for daemon: DaemonToLaunch) -> String? { nil }

    /// The launcher's type name.
    public var launcherName: String { "\(Self.self)" }
}

/// What a `Launcher` needs to start one daemon.
public struct DaemonToLaunch: Sendable {
    /// Which daemon (its slot in the pool).
    public let slot: Int
    /// The daemon program and its arguments.
    public let program: [String]
    /// The daemon's settings (`KAPSEL_...` environment variables), the secret and the
    /// launch token included.
    public let settings: [String: String]
    /// The URL the daemon dials.
    public let hostURL: HostAddress

    /// The launch token of this launch, unique to it: a name for what the launcher makes
    /// (a batch job, a container) that `cleanupCommand` can find again.
    public var token: String { settings[DaemonEnvironment.token] ?? "" }

    /// The program as a shell command line, for a shell whose environment holds
    /// `settings` (as the launcher's own command's environment does).
    public var commandLine: String {
        program.map(shellQuoted).joined(separator: " ")
    }

    /// A self-contained command line for another machine, where the environment does
    /// not follow: `settings` as leading variable assignments (with `replacing` applied,
    /// e.g. another URL), then the program (`executable` in place of this one's path).
    /// The secret is left out: the daemon reads it from its standard input, so pipe it
    /// there (`printf '%s\n' "$KAPSEL_SECRET" | ...`; `printf` is a shell builtin, so no
    /// process's command line shows it).
    public func remoteCommandLine(executable: String? = nil, replacing: [String: String] = [:]) -> String {
        var assignments = settings.merging(replacing) { _, new in new }
        assignments[DaemonEnvironment.hostPID] = nil
        assignments[DaemonEnvironment.secret] = nil
        assignments[DaemonEnvironment.secretOnStandardInput] = "1"
        return assignmentsAndProgram(assignments, executable: executable)
    }

    /// `assignments` then the program, as one shell command line.
    func assignmentsAndProgram(_ assignments: [String: String], executable: String?) -> String {
        let program = [executable ?? self.program[0]] + self.program.dropFirst()
        return (assignments.sorted { $0.key < $1.key }.map { "\($0.key)=\(shellQuoted($0.value))" } + program.map(shellQuoted))
            .joined(separator: " ")
    }
}

/// A launcher that fills a command template: `{command}` becomes the daemon's command
/// line, e.g. `srun --mem 512 -n 1 {command}` or `ip netns exec lab {command}`. The
/// command's environment carries the daemon's settings, so the template suits commands
/// that pass their environment on (resource managers, wrappers).
public struct CommandTemplate: Launcher, Hashable {
    /// The template, with `{command}` where the daemon's command line goes.
    public var template: String

    /// A launcher filling `template`.
    public init(_ template: String) {
        self.template = template
    }

    public func shellCommand(for daemon: DaemonToLaunch) -> String {
        template.replacing("{command}", with: daemon.commandLine)
    }

    /// `command template "<template>"`.
    public var launcherName: String { "command template \"\(template)\"" }
}

/// `text` quoted for a POSIX shell (as launchers build command lines): in single quotes, with any single quote spelled '\''.
public func shellQuoted(_ text: String) -> String {
    let safe = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "/._-=:,+@%".contains($0) }
    return safe ? text : "'" + text.replacing("'", with: "'\\''") + "'"
}
