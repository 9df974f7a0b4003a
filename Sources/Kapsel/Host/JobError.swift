import KapselWire

/// Why a job resolved without a value. Every submitted job resolves exactly once:
/// with its output, or with one of these.
///
/// ```swift
/// switch await handle.result {
/// case .success(let value): print(value)
/// case .failure(let error) where error.code == .crashed: print("daemon died:", error.termination!)
/// case .failure(let error): print(error)
/// }
/// ```
public struct JobError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// `run()` threw; `remoteErrorType`, `message` and `location` say what and where.
        public static let remote = Code("remote error")
        /// The daemon has no job type registered under the job's name.
        public static let unknownJobType = Code("unknown job type")
        /// The job could not be encoded on the host.
        public static let jobEncodingFailed = Code("job encoding failed")
        /// The daemon could not decode the job (a different version of the type?).
        public static let jobDecodingFailed = Code("job decoding failed")
        /// The daemon could not encode the job's output.
        public static let resultEncodingFailed = Code("result encoding failed")
        /// The host could not decode the job's output as the expected type.
        public static let resultDecodingFailed = Code("result decoding failed")
        /// The daemon process died while it held the job; `termination` tells how.
        public static let crashed = Code("daemon crashed")
        /// The job ran longer than its `timeout`.
        public static let timedOut = Code("timed out")
        /// The job was cancelled (`cancel()` or cancellation of the awaiting task).
        public static let cancelled = Code("cancelled")
        /// The connection to the daemon failed (a protocol violation, a lost link).
        public static let connectionLost = Code("connection lost")
        /// The daemons were stopped before the job finished.
        public static let stopped = Code("daemons stopped")
        /// The pool is shutting down gracefully (`Daemons.shutdownGracefully`, a
        /// `DaemonPoolService` told to stop): it takes no more jobs.
        public static let shuttingDown = Code("shutting down")
        /// No daemon the job (or actor) asked for exists in the pool.
        public static let daemonsUnavailable = Code("no daemon available")
        /// No daemon can run the job: their launches failed — exited, or did not connect in
        /// time — too often in a row; the message names the launcher and what it printed.
        public static let launchFailed = Code("launch failed")
        /// The distributed actor called is gone: its daemon died (and it has no restart
        /// policy), or it was released.
        public static let actorLost = Code("actor lost")

        public var description: String { name }
    }

    /// The kind of failure.
    public let code: Code
    /// What happened, for people.
    public let message: String
    /// The job's registered type name.
    public let jobType: String
    /// For `.remote`: the Swift type of the error thrown in the daemon.
    public let remoteErrorType: String?
    /// Where the error was thrown (`file:line in function` for `LocatedError`s,
    /// otherwise the job's `run()`), or which step failed.
    public let location: String?
    /// The daemon the job was on, if it reached one.
    public let daemon: DaemonIdentity?
    /// For `.crashed`: how the daemon process ended.
    public let termination: ProcessTermination?
    /// For `.crashed`: the last lines the daemon wrote to its output before it died.
    public let daemonOutput: String?

    init(
        _ code: Code, _ message: String, jobType: String, remoteErrorType: String? = nil, location: String? = nil,
        daemon: DaemonIdentity? = nil, termination: ProcessTermination? = nil, daemonOutput: String? = nil
    ) {
        self.code = code
        self.message = message
        self.jobType = jobType
        self.remoteErrorType = remoteErrorType
        self.location = location
        self.daemon = daemon
        self.termination = termination
        self.daemonOutput = daemonOutput
    }

    /// The error a daemon reported.
    init(report: FailureReport, jobType: String, daemon: DaemonIdentity) {
        let code: Code = switch report.reason {
        case .thrown: .remote
        case .unknownJobType: .unknownJobType
        case .jobDecodingFailed: .jobDecodingFailed
        case .resultEncodingFailed: .resultEncodingFailed
        case .cancelled: .cancelled
        }
        self.init(code, report.message, jobType: jobType, remoteErrorType: report.errorType, location: report.location, daemon: daemon)
    }

    public var description: String {
        var text = "\(jobType): \(code)"
        if let remoteErrorType, code == .remote { text += " \(remoteErrorType)" }
        text += ": \(message)"
        if let location { text += " [at \(location)]" }
        if let daemon { text += " [\(daemon)]" }
        if let daemonOutput { text += "\n--- last output of the daemon ---\n\(daemonOutput)" }
        return text
    }
}

/// Which daemon process: its index in the pool, the instance at that index, its pid.
public struct DaemonIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The daemon's index in its pool.
    public let index: Int
    /// How many processes have held this index, this one included.
    public let instance: Int
    /// The process id, where known.
    public let pid: Int32?

    public var description: String {
        "daemon \(index) instance \(instance)" + (pid.map { " pid \($0)" } ?? "")
    }
}
