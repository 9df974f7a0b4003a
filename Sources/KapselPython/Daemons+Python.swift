import Foundation
import Kapsel

extension Daemons {
    /// Changes `environment` with no Python using it: daemon `index` is restarted (any
    /// session in it stops, its interpreter with it), `body` runs — install packages there
    /// with `environment.install` — and a fresh session in the environment is started on
    /// that daemon and returned. Sessions on other daemons keep what they imported.
    ///
    /// ```swift
    /// let python = try await daemons.manage(analysis) { environment in
    ///     try await environment.install(["--no-index", "./wheels/mytool-2.0-py3-none-any.whl"])
    /// }
    /// ```
    public func manage(
        _ environment: PythonEnvironment, onDaemon index: Int = 0, _ body: (PythonEnvironment) async throws -> Void
    ) async throws -> PythonSession {
        try await restart(daemon: index)
        try await body(environment)
        return try await spawn(PythonSession.self, configuration: environment.sessionConfiguration, on: .daemon(index))
    }
}

extension Daemons {
    /// A Python session in a daemon (placed like any actor) — or, with `inProcess`, in
    /// this very process, to step through Python with the host's debugger.
    ///
    /// **In-process mode is unsafe**: a segfault, `os._exit` or a hang in Python then takes
    /// the host down with it, and one interpreter (one runtime, one environment) serves the
    /// whole process. It is off unless asked for, by argument or by setting the
    /// environment variable `KAPSEL_PYTHON_IN_PROCESS=1`.
    public func pythonSession(
        _ configuration: PythonSession.Configuration, on placement: ActorPlacement = .leastLoaded,
        inProcess: Bool = ProcessInfo.processInfo.environment["KAPSEL_PYTHON_IN_PROCESS"] == "1"
    ) async throws -> PythonSession {
        if inProcess { return try PythonSession(actorSystem: actorSystem, configuration: configuration) }
        return try await spawn(PythonSession.self, configuration: configuration, on: placement)
    }
}
