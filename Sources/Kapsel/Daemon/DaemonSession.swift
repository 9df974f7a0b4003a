import KapselSharedMemory
import KapselWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's end of its host connection, whatever reads it — a `SocketReader` on a
/// local connection, NIO's `DaemonConnectionHandler` over TCP and TLS: it feeds what
/// happens to a `DaemonConnectionState` and carries out the actions it returns — frames
/// through the connection's one `ConnectionWriter`, requests to the `JobRunner` and the
/// `ActorHost`, and the end of the process through `onExit`.
///
/// Events come in order from the connection's reader; the lifetime's and the heartbeat's
/// timers and the jobs' ends come from other threads, so what they touch is behind locks.
final class DaemonSession: Sendable {
    private struct Work: Sendable {
        let runner: JobRunner
        let actors: ActorHost
        let carrier: any AttachmentCarrier
    }

    private let configuration: DaemonConfiguration
    private let registry: DaemonRegistry
    private let descriptors: DescriptorChannel?
    private let writer: ConnectionWriter
    private let state: Mutex<DaemonConnectionState>
    private let work = Mutex<Work?>(nil)
    private let heartbeat = Mutex<HeartbeatMonitor?>(nil)
    private let lifetime: LifetimeMonitor?
    /// Ends the connection (after what was written before).
    private let closeConnection: @Sendable () -> Void
    /// Whether jobs and calls start on the thread that delivers them (a local connection,
    /// read by a `ReaderRelay`), or on the global executor (NIO's loop stays free).
    private let startsInline: Bool
    /// Ends the process (in a real daemon it does not return).
    private let onExit: @Sendable (DaemonExitCode, String?) -> Void
    /// Called once when the connection to the host breaks.
    private let onHostLost: @Sendable (String) -> Void

    /// A session on the connection `writer` writes; `closeConnection` ends that connection;
    /// `startsInline`: jobs and calls start on the thread that delivers them.
    init(
        configuration: DaemonConfiguration, registry: DaemonRegistry, descriptors: DescriptorChannel?, writer: ConnectionWriter,
        startsInline: Bool, closeConnection: @escaping @Sendable () -> Void, onExit: @escaping @Sendable (DaemonExitCode, String?) -> Void,
        onHostLost: @escaping @Sendable (String) -> Void
    ) {
        self.startsInline = startsInline
        self.configuration = configuration
        self.registry = registry
        self.descriptors = descriptors
        self.writer = writer
        self.state = Mutex(DaemonConnectionState(secret: configuration.secret, token: configuration.token, pid: getpid(), batchJob: configuration.batchJob))
        self.lifetime = configuration.lifetime.isLimited ? LifetimeMonitor(configuration.lifetime) : nil
        self.closeConnection = closeConnection
        self.onExit = onExit
        self.onHostLost = onHostLost
    }

    /// A message arrived from the host.
    func received(_ message: WireMessage) {
        heartbeat.withLock { $0 }?.heard()
        let actions = state.withLock { state -> [DaemonConnectionState.Action]? in
            if state.delivers(message) { return nil }
            let actions = state.received(message)
            // The work is set up before any request can reach it: a request read by the
            // relay's other thread meanwhile waits for this lock.
            for case .begin(let welcome) in actions { begin(welcome) }
            return actions.filter { if case .begin = $0 { false } else { true } }
        }
        if let actions { run(actions) } else { deliver(message) }
    }

    /// The connection failed.
    func failed(_ failure: DaemonConnectionState.Failure) {
        run(state.withLock { $0.failed(failure) })
    }

    /// The connection closed.
    func closed() {
        run(state.withLock { $0.closed() })
    }

    private func run(_ actions: [DaemonConnectionState.Action]) {
        for action in actions {
            switch action {
            case .send(let message):
                writer.send(.plain(message))
            case .begin:
                // Set up in `received`, under the state's lock.
                break
            case .deliver(let message):
                deliver(message)
            case .exit(let code, let message):
                stopWork()
                onExit(code, message.map { "kapsel daemon \(getpid()): \($0)" })
                closeConnection()
            case .hostLost(let reason):
                // The host has resolved this connection's work already.
                stopWork()
                closeConnection()
                onHostLost(reason)
            }
        }
    }

    /// Sets up the work once the host has proved itself: the actor system, the job
    /// runner, the actors, the lifetime and the heartbeats.
    private func begin(_ welcome: Welcome) {
        let writer = self.writer
        let carrier = makeCarrier(writer: writer, descriptors: descriptors, limits: configuration.limits)
        writer.install(carrier)
        let actorSystem = KapselActorSystem(role: .daemon(registry.actors), inlineLimit: configuration.inlineLimit)
        registry.actors.setIdentity(slot: Int(welcome.daemonIndex), instance: Int(welcome.instance))
        let daemonContext = DaemonContext(daemonIndex: Int(welcome.daemonIndex), instance: Int(welcome.instance), processID: getpid(), actorSystem: actorSystem)
        registry.actors.observeCount { count in writer.sendSoon(.actorCount(UInt32(count))) }
        let lifetime = self.lifetime
        let onJobFinished: (@Sendable () -> Void)? = if let lifetime { { lifetime.jobFinished() } } else { nil }
        let runner = JobRunner(
            writer: writer, carrier: carrier, registry: registry.jobs, context: daemonContext, inlineLimit: configuration.inlineLimit,
            startsInline: startsInline, onJobFinished: onJobFinished
        )
        let actors = ActorHost(
            writer: writer, carrier: carrier, system: actorSystem, factories: registry.factories, context: daemonContext, startsInline: startsInline
        )
        work.withLock { $0 = Work(runner: runner, actors: actors, carrier: carrier) }
        if let lifetime {
            let daemonActors = registry.actors
            lifetime.start(on: writer.eventLoop, isIdle: { runner.isIdle && daemonActors.liveCount == 0 }, announce: { [self] code in
                state.withLock { $0.retiring(code) }
                writer.send(.plain(.retiring(exitCode: UInt8(code.rawValue))))
            })
        }
        if let settings = configuration.heartbeat {
            let monitor = HeartbeatMonitor(settings)
            heartbeat.withLock { $0 = monitor }
            monitor.start(on: writer.eventLoop, beat: { writer.send(.plain(.heartbeat)) }, onSilence: { [self] in
                run(state.withLock { $0.heartbeatLost(after: settings.timeout) })
            })
        }
    }

    /// Hands a request of the host to the part of the daemon it is for.
    private func deliver(_ message: WireMessage) {
        guard let work = work.withLock({ $0 }) else { return }
        switch message {
        case .run(let request):
            lifetime?.jobArrived()
            work.runner.enqueue(request)
        case .call(let request):
            work.actors.handle(request)
        case .cancel(let requestID):
            if !work.actors.cancel(requestID) { work.runner.cancel(requestID) }
        case .released(let tokens):
            work.carrier.peerReleased(tokens)
        case .releasesWanted:
            work.carrier.peerWantsReleases()
        case .forget(let names):
            work.carrier.peerForgot(names)
        case .releaseActors(let releases):
            registry.actors.release(releases)
        case .attachmentChunk(let chunk):
            do {
                try work.carrier.received(chunk)
            } catch {
                run(state.withLock { $0.violation("cannot receive streamed shared memory from the host: \(error)") })
            }
        default:
            break
        }
    }

    /// The connection is over: work under way stops (nobody will read its results).
    private func stopWork() {
        if let work = work.withLock({ $0 }) {
            work.runner.abandon()
            work.actors.abandon()
        }
        heartbeat.withLock { $0 }?.stop()
        lifetime?.stop()
        writer.connectionClosed()
    }
}
