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
