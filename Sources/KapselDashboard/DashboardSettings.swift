/// Where a `Dashboard` listens and how often it updates.
///
/// ```swift
/// var settings = DashboardSettings()
/// settings.host = "0.0.0.0"          // other machines: needs allowRemote, and a token is made
/// settings.allowRemote = true
/// ```
public struct DashboardSettings: Sendable {
    /// The address to bind: loopback by default.
    public var host = "127.0.0.1"
    /// The port: 0 picks a free one (`Dashboard.url` tells which).
    public var port = 0
    /// Allow an address other than loopback. Then every request and the event stream must
    /// carry the dashboard's token (`?token=` or `Authorization: Bearer`); without it, or
    /// with a wrong one, the answer is 401 and nothing else.
    public var allowRemote = false
    /// How often the page is sent new figures (at most), whatever the pools' job rate.
    public var updateInterval: Duration = .milliseconds(250)
    /// How many samples of jobs per second the plot keeps (one per second).
    public var history = 180
    /// How many events (crashes, retries, ...) each pool's list keeps.
    public var eventLimit = 100

    /// Loopback, a free port, four updates a second.
    public init() {}

    /// Whether `host` is a loopback address.
    var isLoopback: Bool {
        host == "127.0.0.1" || host == "::1" || host == "localhost" || host.hasPrefix("127.")
    }
}

/// A dashboard that cannot start.
public struct DashboardError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
