import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// Workers as Slurm batch jobs: each worker is submitted with `sbatch` — a generated
/// batch script with your `#SBATCH` options and script lines — and its launch lasts as
/// long as the job does; a worker that retires, is stopped or whose launch is given up
/// is cancelled with `scancel`.
///
/// ```swift
/// var cluster = ControllerOptions(workers: 0...50, idleTime: .seconds(30), crashesMax: 5)
/// cluster.launch = .slurm(SlurmLaunch(partition: "debug", cpusPerTask: 1, memoryPerCPU: "2G",
///                                     scriptLines: ["module load swift"]))
/// ```
///
/// The secret reaches the job through a file only its owner may read, in
/// `scriptDirectory` (which the compute nodes must see: your home directory is the
/// default); the worker deletes it once read. It is never on a command line, in the
/// batch script or in the job's environment. The job's output lands beside it and is
/// shown, like any worker's output, when the worker fails.
///
/// Workers on other machines must reach the host: have it listen on an address they
/// can dial (`daemons.remote.listen = "tls+tcp://login1:5555"`).
public struct SlurmLaunch: Launcher, Hashable {
    /// The partition (`--partition`); the cluster's default if nil.
    public var partition: String?
    /// CPUs for each worker (`--cpus-per-task`).
    public var cpusPerTask: Int?
    /// Memory per CPU (`--mem-per-cpu`), in Slurm's notation: `2G`, `500M`.
    public var memoryPerCPU: String?
    /// The job's time limit (`--time`), in Slurm's notation: `1:00:00`.
    public var time: String?
    /// More `#SBATCH` options, one per entry: `--account=lab`, `--gres=gpu:1`.
    public var options: [String]
    /// Shell lines the batch script runs before the worker: `module load swift`.
    public var scriptLines: [String]
    /// The worker executable's path on the compute nodes (the host's path if nil).
    public var executable: String?
    /// Where secret and output files go; the compute nodes must see it
    /// (`~/.kapsel/slurm` if nil).
    public var scriptDirectory: String?
    /// How often the launch asks Slurm whether its job has ended.
    public var pollInterval: Duration

    /// A Slurm launch; every setting is optional.
    public init(
        partition: String? = nil, cpusPerTask: Int? = nil, memoryPerCPU: String? = nil, time: String? = nil, options: [String] = [],
        scriptLines: [String] = [], executable: String? = nil, scriptDirectory: String? = nil, pollInterval: Duration = .milliseconds(500)
    ) {
        self.partition = partition
        self.cpusPerTask = cpusPerTask
        self.memoryPerCPU = memoryPerCPU
        self.time = time
        self.options = options
        self.scriptLines = scriptLines
        self.executable = executable
        self.scriptDirectory = scriptDirectory
        self.pollInterval = pollInterval
    }

    /// `Slurm (partition debug)`.
    public var launcherName: String { "Slurm" + (partition.map { " (partition \($0))" } ?? "") }

    /// The job name of `daemon`'s launch: `kapsel-` and its token's first 16 characters.
    public func jobName(for daemon: DaemonToLaunch) -> String {
        "kapsel-" + daemon.token.prefix(16)
    }

    /// The batch script of `daemon`'s job: the `#SBATCH` lines, your script lines, and the
    /// worker (its settings come with the job's environment, `--export=ALL`).
    public func batchScript(for daemon: DaemonToLaunch) -> String {
        batchScript(program: [executable ?? daemon.program[0]] + daemon.program.dropFirst(), jobName: jobName(for: daemon))
    }

    /// The batch script of a worker running `program` as job `jobName`: what `sbatch` gets.
    public func batchScript(program: [String], jobName: String) -> String {
        var lines = ["#!/bin/sh", "#SBATCH --job-name=\(jobName)", "#SBATCH --output=\(files(jobName: jobName).output)"]
        if let partition { lines.append("#SBATCH --partition=\(partition)") }
        if let cpusPerTask { lines.append("#SBATCH --cpus-per-task=\(cpusPerTask)") }
        if let memoryPerCPU { lines.append("#SBATCH --mem-per-cpu=\(memoryPerCPU)") }
        if let time { lines.append("#SBATCH --time=\(time)") }
        lines += options.map { "#SBATCH \($0)" }
        lines += scriptLines
        lines.append("exec " + program.map(shellQuoted).joined(separator: " "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// Whether a Slurm cluster answers here (`sinfo` runs and succeeds).
    public static func clusterAnswers() -> Bool {
        system("sinfo -h >/dev/null 2>&1") == 0
    }

    /// Writes the secret file, submits the job, says its id, waits for it to end while
    /// asking `scontrol`, shows its output and ends as the worker did: with its exit
    /// code, or killed by its signal.
    public func shellCommand(for daemon: DaemonToLaunch) -> String {
        let files = files(jobName: jobName(for: daemon))
        let interval = Double(pollInterval.components.seconds) + Double(pollInterval.components.attoseconds) / 1e18
        return """
            dir=\(shellQuoted(files.directory)); secret=\(shellQuoted(files.secret)); out=\(shellQuoted(files.output))
            mkdir -p "$dir" && chmod 700 "$dir" || exit 1
            (umask 077 && printf '%s\\n' "$KAPSEL_SECRET" > "$secret") || exit 1
            unset KAPSEL_SECRET
            export KAPSEL_SECRET_FILE="$secret"
            job=$(sbatch --parsable --export=ALL <<'KAPSEL_BATCH_SCRIPT'
            \(batchScript(for: daemon))KAPSEL_BATCH_SCRIPT
            ) || { rm -f "$secret"; exit 1; }
            job=${job%%;*}
            echo "kapsel: slurm job $job"
            while info=$(scontrol show job -o "$job" 2>/dev/null); do
                case "$info" in
                    *JobState=PENDING*|*JobState=CONFIGURING*|*JobState=RUNNING*|*JobState=COMPLETING*|*JobState=SUSPENDED*|*JobState=REQUEUED*|*JobState=RESIZING*) sleep \(interval) ;;
                    *) break ;;
                esac
            done
            rm -f "$secret"
            if [ -s "$out" ]; then tail -c 4096 "$out" >&2; fi
            rm -f "$out"
            state=$(printf '%s\\n' "$info" | sed -n 's/.*JobState=\\([A-Z_]*\\).*/\\1/p')
            code=$(printf '%s\\n' "$info" | sed -n 's/.* ExitCode=\\([0-9]*\\):\\([0-9]*\\).*/\\1 \\2/p')
            set -- $code
            [ "$state" = COMPLETED ] || echo "kapsel: slurm job $job ended $state" >&2
            if [ "${2:-0}" != 0 ]; then kill -"$2" $$; exit $((128 + $2)); fi
            exit "${1:-1}"
            """
    }

    /// Cancels the job (if it still runs) and removes its files.
    public func cleanupCommand(for daemon: DaemonToLaunch) -> String? {
        let files = files(jobName: jobName(for: daemon))
        return "timeout 30 scancel --name=\(shellQuoted(jobName(for: daemon))) --user=\"$(id -un)\" 2>/dev/null; rm -f \(shellQuoted(files.secret)) \(shellQuoted(files.output))"
    }

    /// Where job `name` keeps its secret and its output.
    private func files(jobName name: String) -> (directory: String, secret: String, output: String) {
        let directory = scriptDirectory ?? ((getenv("HOME").map { String(cString: $0) } ?? "/tmp") + "/.kapsel/slurm")
        return (directory, "\(directory)/\(name).secret", "\(directory)/\(name).out")
    }
}

extension DaemonOptions.Launch {
    /// As Slurm batch jobs (`SlurmLaunch`).
    public static func slurm(_ settings: SlurmLaunch) -> DaemonOptions.Launch {
        .custom(settings)
    }
}
