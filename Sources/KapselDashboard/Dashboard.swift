import Hummingbird
import Kapsel
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A live view of pools in a browser, served from the host process: each pool's daemons
/// (state, instance, pid, host, jobs assigned, complete and crashed, memory and CPU), its
/// queue, jobs per second over the last minutes, crash and retry events with the signal
/// and last output lines, shared memory lent, and `map`s under way. The page updates
/// itself over server-sent events, a few times a second at most; it needs no network
/// (its script and style are in the page).
///
/// ```swift
/// let dashboard = try await Dashboard.start(daemons)     // 127.0.0.1, a free port
/// print(dashboard.url)                                     // open it in a browser
/// await dashboard.stop()
/// ```
///
/// It listens on loopback unless `DashboardSettings.allowRemote` is set; then it makes a
/// token that every request must carry (`url` includes it), printed once to standard error.
public final class Dashboard: Sendable {
    /// The page's address (with `?token=` when the dashboard needs one).
    public let url: String
    /// The token requests must carry, for a dashboard bound beyond loopback.
    public let token: String?
    private let services: ServiceGroup
    private let serving: Task<Void, any Error>
    private let collecting: Task<Void, Never>
    private let stopping: StopFlag

    private init(url: String, token: String?, services: ServiceGroup, serving: Task<Void, any Error>, collecting: Task<Void, Never>, stopping: StopFlag) {
        self.url = url
        self.token = token
        self.services = services
        self.serving = serving
        self.collecting = collecting
        self.stopping = stopping
    }

    /// Serves a dashboard of one pool.
    public static func start(_ daemons: Daemons, settings: DashboardSettings = DashboardSettings()) async throws -> Dashboard {
        try await start(pools: [(daemons.name, daemons)], settings: settings)
    }

    /// Serves a dashboard of every profile of `group`.
    public static func start(_ group: ControllerGroup, settings: DashboardSettings = DashboardSettings()) async throws -> Dashboard {
        var pools: [(String, Daemons)] = []
        for profile in group.profiles { pools.append((profile, try group[profile])) }
        return try await start(pools: pools, settings: settings)
    }

    /// Serves a dashboard of `pools`, each under its name.
    public static func start(pools: [(String, Daemons)], settings: DashboardSettings = DashboardSettings()) async throws -> Dashboard {
        guard settings.isLoopback || settings.allowRemote else {
            throw DashboardError("the dashboard would listen on \(settings.host), beyond loopback: set DashboardSettings.allowRemote (requests then need its token)")
        }
        let token = settings.isLoopback ? nil : DashboardToken.make()
        let collector = Collector(pools: pools.map { (name: $0.0, daemons: $0.1) }, settings: settings)
        collector.sample()
        let stopping = StopFlag()
        let router = DashboardRoutes(collector: collector, token: token, stopping: stopping).router()
        let bound = BoundPort()
        let quiet = Logger(label: "kapsel.dashboard") { _ in SwiftLogNoOpLogHandler() }
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname(settings.host, port: settings.port)),
            onServerRunning: { channel in bound.resolve(.success(channel.localAddress?.port ?? settings.port)) }, logger: quiet
        )
        let services = ServiceGroup(services: [app], logger: quiet)
        let serving = Task {
            do {
                try await services.run()
            } catch {
                bound.resolve(.failure(error))
                throw error
            }
            bound.resolve(.failure(DashboardError("the dashboard's server ended before it listened")))
        }
        let collecting = Task { await collector.run() }
        let port: Int
        do {
            port = try await bound.value
        } catch {
            collecting.cancel()
            throw DashboardError("the dashboard cannot listen on \(settings.host):\(settings.port): \(error)")
        }
        let host = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
        let url = "http://\(host):\(port)/" + (token.map { "?token=\($0)" } ?? "")
        if token != nil { writeToStandardError("kapsel dashboard: \(url)\n") }
        return Dashboard(url: url, token: token, services: services, serving: serving, collecting: collecting, stopping: stopping)
    }

    /// Stops serving: open pages stop updating, the port is released.
    public func stop() async {
        stopping.set()
        await services.triggerGracefulShutdown()
        _ = try? await serving.value
        collecting.cancel()
        await collecting.value
    }
}

/// The port the server bound, once it runs (or why it could not).
private final class BoundPort: Sendable {
    private enum State {
        case waiting(CheckedContinuation<Int, any Error>?)
        case done(Result<Int, any Error>)
    }

    private let state = Mutex(State.waiting(nil))

    func resolve(_ result: Result<Int, any Error>) {
        let waiter: CheckedContinuation<Int, any Error>? = state.withLock { state in
            guard case .waiting(let waiter) = state else { return nil }
            state = .done(result)
            return waiter
        }
        waiter?.resume(with: result)
    }

    var value: Int {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let done: Result<Int, any Error>? = state.withLock { state in
                    switch state {
                    case .waiting:
                        state = .waiting(continuation)
                        return nil
                    case .done(let result):
                        return result
                    }
                }
                if let done { continuation.resume(with: done) }
            }
        }
    }
}

/// Writes `text` to standard error.
func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

/// Set once the dashboard stops: the event streams end.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    /// Whether the dashboard is stopping.
    var isSet: Bool { flag.load(ordering: .relaxed) }

    /// The dashboard stops.
    func set() { flag.store(true, ordering: .relaxed) }
}
