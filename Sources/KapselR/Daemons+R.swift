import Foundation
import Kapsel

extension Daemons {
    /// An R session in a daemon (placed like any actor) — or, with `inProcess`, in this
    /// very process, to step through R with the host's debugger.
    ///
    /// ```swift
    /// let r = try await daemons.rSession(RSession.Configuration(runtime: try RRuntime()))
    /// ```
    ///
    /// R cannot be restarted in a process: when the daemon chosen already runs another
    /// runtime or environment, it is restarted (what lives in it — its R, its actors — is
    /// gone) and the session starts in the fresh daemon.
    ///
    /// **In-process mode is unsafe**: a segfault, `quit()` or a hang in R then takes the
    /// host down with it, and one R (one runtime, one environment) serves the whole
    /// process. It is off unless asked for, by argument or by setting the environment
    /// variable `KAPSEL_R_IN_PROCESS=1`.
    public func rSession(
        _ configuration: RSession.Configuration, on placement: ActorPlacement = .leastLoaded,
        inProcess: Bool = ProcessInfo.processInfo.environment["KAPSEL_R_IN_PROCESS"] == "1"
    ) async throws -> RSession {
        if inProcess { return try RSession(actorSystem: actorSystem, configuration: configuration) }
        do {
            return try await spawn(RSession.self, configuration: configuration, on: placement)
        } catch let error as JobError {
            guard let kind = RError(error)?.kind, kind == "RuntimeMismatch" || kind == "EnvironmentMismatch", let daemon = error.daemon?.index else { throw error }
            try await restart(daemon: daemon)
            return try await spawn(RSession.self, configuration: configuration, on: .daemon(daemon))
        }
    }
}
