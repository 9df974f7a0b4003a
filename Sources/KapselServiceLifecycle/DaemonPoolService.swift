import Kapsel
import ServiceLifecycle
import Synchronization

/// A pool of daemons as a swift-service-lifecycle `Service`, for servers: `run()` starts
/// the daemons and keeps them until the service group shuts down gracefully (SIGTERM, or
/// another service ending); then the pool takes no more jobs (`submit` resolves
/// `.shuttingDown`), the jobs already submitted get `shutdownGrace` to finish, and the
/// daemons stop. Cancellation stops them at once.
///
/// ```swift
/// let pool = DaemonPoolService(4, shutdownGrace: .seconds(30))
/// let group = ServiceGroup(services: [pool, server], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// // elsewhere, in a request handler:
/// let value = try await pool.daemons.submit(Square(x: 3)).value
/// ```
public final class DaemonPoolService: Service, Sendable {
    private enum State {
        case notStarted([CheckedContinuation<Daemons, any Error>])
        case running(Daemons)
        case ended(any Error)
    }

    private let start: @Sendable () async throws -> Daemons
    /// How long the jobs submitted before a graceful shutdown have to finish.
    public let shutdownGrace: Duration
    private let state = Mutex(State.notStarted([]))

    /// A service for `count` daemons started with `options` (as `Daemons(_:options:)`).
    public init(_ count: Int, options: DaemonOptions = DaemonOptions(), shutdownGrace: Duration = .seconds(10)) {
        self.start = { try await Daemons(count, options: options) }
        self.shutdownGrace = shutdownGrace
    }

    /// A service for a pool that sizes itself (as `Daemons(controller:)`).
    public init(controller: ControllerOptions, shutdownGrace: Duration = .seconds(10)) {
        self.start = { try await Daemons(controller: controller) }
        self.shutdownGrace = shutdownGrace
    }

    /// The pool: waits until `run()` has started it; throws what `run()` threw when it
    /// could not start.
    public var daemons: Daemons {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<Daemons, any Error>? = state.withLock { state in
                    switch state {
                    case .notStarted(let waiters):
                        state = .notStarted(waiters + [continuation])
                        return nil
                    case .running(let daemons): return .success(daemons)
                    case .ended(let error): return .failure(error)
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }

    /// Starts the daemons, keeps them until a graceful shutdown (or cancellation), then
    /// stops them as described above. Throws when they cannot start.
    public func run() async throws {
        let daemons: Daemons
        do {
            daemons = try await start()
        } catch {
            end(with: error)
            throw error
        }
        let waiters = state.withLock { state in
            defer { state = .running(daemons) }
            if case .notStarted(let waiters) = state { return waiters }
            return []
        }
        for waiter in waiters { waiter.resume(returning: daemons) }

        // Returns on a graceful shutdown; throws on cancellation, which allows no grace.
        // The pool stays reachable: jobs submitted from now on resolve `.shuttingDown`,
        // and `.stopped` once it has stopped.
        let cancelled = (try? await gracefulShutdown()) == nil
        await daemons.shutdownGracefully(grace: cancelled ? .zero : shutdownGrace)
    }

    /// The pool could not start: those waiting for it get the error.
    private func end(with error: any Error) {
        let waiters = state.withLock { state in
            defer { state = .ended(error) }
            if case .notStarted(let waiters) = state { return waiters }
            return []
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }
}
