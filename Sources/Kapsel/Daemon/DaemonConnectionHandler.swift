import KapselSharedMemory
import KapselWire
import NIOCore
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's end of its host connection, at the end of its pipeline (frame decoder →
/// frame encoder → this): it feeds what happens to a `DaemonConnectionState` and carries
/// out the actions it returns — frames through the connection's one `ConnectionWriter`,
/// requests to the `JobRunner` and the `ActorHost`, and the end of the process through
/// `onExit`.
final class DaemonConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WireMessage

    private let configuration: DaemonConfiguration
    private let registry: DaemonRegistry
    private let descriptors: DescriptorChannel?
    /// Set when the host's TLS certificate was not the pinned one.
    private let tlsMismatch: CertificateMismatch?
    private var state: DaemonConnectionState
    private var writer: ConnectionWriter?
    private var work: (runner: JobRunner, actors: ActorHost)?
    private var heartbeat: HeartbeatMonitor?
    private let lifetime: LifetimeMonitor?
    /// Ends the process (in a real daemon it does not return).
    private let onExit: (DaemonExitCode, String?) -> Void
    /// Called once when the connection to the host breaks.
    private let onHostLost: (String) -> Void

    init(
        configuration: DaemonConfiguration, registry: DaemonRegistry, descriptors: DescriptorChannel?, tlsMismatch: CertificateMismatch? = nil,
        onExit: @escaping (DaemonExitCode, String?) -> Void, onHostLost: @escaping (String) -> Void
    ) {
        self.configuration = configuration
        self.registry = registry
        self.descriptors = descriptors
        self.tlsMismatch = tlsMismatch
        self.state = DaemonConnectionState(secret: configuration.secret, token: configuration.token, pid: getpid(), batchJob: configuration.batchJob)
        self.lifetime = configuration.lifetime.isLimited ? LifetimeMonitor(configuration.lifetime) : nil
        self.onExit = onExit
        self.onHostLost = onHostLost
    }

    func handlerAdded(context: ChannelHandlerContext) {
        writer = ConnectionWriter(channel: context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        heartbeat?.heard()
        let message = unwrapInboundIn(data)
        if state.delivers(message) {
            deliver(message, context: context)
        } else {
            run(state.received(message), context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let description = String(describing: error)
        let failure: DaemonConnectionState.Failure = if let mismatch = tlsMismatch?.recorded {
            .certificateMismatch(mismatch)
        } else if error is NIOSSLError {
            .tls(description)
        } else if error is IOError {
            .io(description)
        } else {
            .other(description)
        }
        run(state.failed(failure), context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writer?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(state.closed(), context: context)
        context.fireChannelInactive()
    }

    private func run(_ actions: [DaemonConnectionState.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .send(let message):
                writer?.send(.plain(message))
            case .begin(let welcome):
                begin(welcome, context: context)
            case .deliver(let message):
                deliver(message, context: context)
            case .exit(let code, let message):
                stopWork()
                onExit(code, message.map { "kapsel daemon \(getpid()): \($0)" })
                context.close(promise: nil)
            case .hostLost(let reason):
                // The host has resolved this connection's work already.
                stopWork()
                context.close(promise: nil)
                onHostLost(reason)
            }
        }
    }

    /// Sets up the work once the host has proved itself: the actor system, the job
    /// runner, the actors, the lifetime and the heartbeats.
    private func begin(_ welcome: Welcome, context: ChannelHandlerContext) {
        guard let writer else { return }
        let carrier = makeCarrier(writer: writer, descriptors: descriptors, limits: configuration.limits)
        writer.install(carrier)
        let actorSystem = KapselActorSystem(role: .daemon(registry.actors), inlineLimit: configuration.inlineLimit)
        registry.actors.setIdentity(slot: Int(welcome.daemonIndex), instance: Int(welcome.instance))
        let daemonContext = DaemonContext(daemonIndex: Int(welcome.daemonIndex), instance: Int(welcome.instance), processID: getpid(), actorSystem: actorSystem)
        registry.actors.observeCount { count in writer.sendSoon(.actorCount(UInt32(count))) }
        let runner = JobRunner(
            writer: writer, carrier: carrier, registry: registry.jobs, context: daemonContext, inlineLimit: configuration.inlineLimit,
            startsOnLoop: configuration.heartbeat == nil
        )
        work = (runner, ActorHost(writer: writer, carrier: carrier, system: actorSystem, factories: registry.factories, context: daemonContext))
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        if let lifetime {
            let actors = registry.actors
            runner.onJobFinished = { lifetime.jobFinished() }
            lifetime.start(on: context.eventLoop, isIdle: { runner.isIdle && actors.liveCount == 0 }, announce: { code in
                handler.value.state.retiring(code)
                writer.send(.plain(.retiring(exitCode: UInt8(code.rawValue))))
            })
        }
        if let settings = configuration.heartbeat {
            let monitor = HeartbeatMonitor(settings)
            heartbeat = monitor
            monitor.start(on: context.eventLoop, beat: { writer.send(.plain(.heartbeat)) }, onSilence: {
                handler.value.run(handler.value.state.heartbeatLost(after: settings.timeout), context: context)
            })
        }
    }

    /// Hands a request of the host to the part of the daemon it is for.
    private func deliver(_ message: WireMessage, context: ChannelHandlerContext) {
        guard let (runner, actors) = work, let carrier = writer?.attachmentCarrier else { return }
        switch message {
        case .run(let request):
            lifetime?.jobArrived()
            runner.enqueue(request)
        case .call(let request):
            actors.handle(request)
        case .cancel(let requestID):
            if !actors.cancel(requestID) { runner.cancel(requestID) }
        case .released(let tokens):
            carrier.peerReleased(tokens)
        case .releasesWanted:
            carrier.peerWantsReleases()
        case .forget(let names):
            carrier.peerForgot(names)
        case .releaseActors(let releases):
            registry.actors.release(releases)
        case .attachmentChunk(let chunk):
            do {
                try carrier.received(chunk)
            } catch {
                run(state.violation("cannot receive streamed shared memory from the host: \(error)"), context: context)
            }
        default:
            break
        }
    }

    /// The connection is over: work under way stops (nobody will read its results).
    private func stopWork() {
        work?.runner.abandon()
        work?.actors.abandon()
        heartbeat?.stop()
        lifetime?.stop()
        writer?.connectionClosed()
    }
}
