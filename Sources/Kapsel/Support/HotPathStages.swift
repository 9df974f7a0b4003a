import KapselWire
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where the time of a trivial job's round trip goes: each stage of the local path timed
/// alone, in this process, with the code the path runs (the bench's W1 breakdown).
///
/// Stages that are computation (encoding, decoding, the dispatcher's bookkeeping, the
/// handle's resolution) are timed in tight loops; stages that are a thread waking up (the
/// hop from the caller onto an event loop, the awaiting task resumed) are timed as one
/// thread signalling another that sleeps, which is what they are on the real path. The
/// socket's part — a write, the peer's wake-up, its read — is the raw floor (W0), measured
/// apart; `write(2)` alone is timed here on a socket pair.
package enum HotPathStages {
    /// One stage: its name and its median time in microseconds.
    package struct Stage: Sendable {
        /// What runs, in the order of the round trip.
        package var name: String
        /// Median microseconds per occurrence.
        package var microseconds: Double
        /// Whether it adds to a local job's round trip beyond the raw floor (W0): not the
        /// writes, which W0 includes, nor the hop onto the event loop, which only remote
        /// connections take.
        package var addsToLocalPath = true
    }

    /// The stages of a round trip of `job`, each the median of `rounds` measurements.
    package static func measure<J: Job>(_ job: J, rounds: Int = 5) async throws -> [Stage] where J.Output: Equatable {
        let allocator = ByteBufferAllocator()
        let encoder = FrameEncoder()
        let limits = WireLimits()

        func runFrame() throws -> ByteBuffer {
            let envelope = try Envelope(encoding: job, inlineLimit: 1 << 20, actorSystem: nil)
            let message = OutgoingMessage.run(requestID: 7, jobType: J.jobTypeName, envelope).message(announcing: [])
            return encoder.encodeContiguous(message, allocator: allocator)
        }
        let request = try runFrame()
        let output = try await job.run()

        func resultFrame() throws -> ByteBuffer {
            let envelope = try Envelope(encoding: output, inlineLimit: 1 << 20, actorSystem: nil)
            let message = OutgoingMessage.reply(to: 7, .value(envelope), isCall: false).message(announcing: [])
            return encoder.encodeContiguous(message, allocator: allocator)
        }
        let result = try resultFrame()

        var stages: [Stage] = []
        func add(_ name: String, _ microseconds: Double, addsToLocalPath: Bool = true) {
            stages.append(Stage(name: name, microseconds: microseconds, addsToLocalPath: addsToLocalPath))
        }

        add("host: encode the job and its frame", try await median(rounds) { _ = try runFrame() })
        add("host: dispatcher bookkeeping (submit and answer)", try await dispatcherRound(rounds))
        add("host: hop from the caller onto the event loop (a wake-up; TCP and TLS only, a local connection's senders write its socket)", await loopHop(rounds), addsToLocalPath: false)
        add("host: write(2) of the frame (in W0)", socketWrite(request, rounds), addsToLocalPath: false)
        add("daemon: decode the frame and the job", try await median(rounds) {
            var buffer = request
            var decoder = FrameDecoder(limits: limits, handshakeFrames: 0)
            guard case .run(let run) = try decoder.nextMessage(from: &buffer) else { throw WireError(.malformedFrame, "not a run request") }
            _ = try Envelope(payload: run.payload).decode(J.self, actorSystem: nil)
        })
        add("daemon: start the job's task on the reading thread (Task.immediate)", await taskStart(rounds))
        add("daemon: the job itself", try await median(rounds) { _ = try await job.run() })
        add("daemon: encode the result and its frame", try await median(rounds) { _ = try resultFrame() })
        add("daemon: write(2) of the frame (in W0)", socketWrite(result, rounds), addsToLocalPath: false)
        add("host: decode the result's frame", try await median(rounds) {
            var buffer = result
            var decoder = FrameDecoder(limits: limits, handshakeFrames: 0)
            guard case .result = try decoder.nextMessage(from: &buffer) else { throw WireError(.malformedFrame, "not a result") }
        })
        add("host: resolve the handle and decode the output", try await resolution(output, rounds))
        add("host: resume the awaiting caller (a wake-up)", await continuationResume(rounds))
        return stages
    }

    /// Repetitions per timed batch of a computing stage.
    private static let batch = 2_000

    /// Median over `rounds` batches of `body`'s time per call, in microseconds.
    private static func median(_ rounds: Int, _ body: () async throws -> Void) async rethrows -> Double {
        let clock = ContinuousClock()
        for _ in 0..<batch { try await body() }
        var samples: [Double] = []
        for _ in 0..<rounds {
            let start = clock.now
            for _ in 0..<batch { try await body() }
            samples.append((clock.now - start).microseconds / Double(batch))
        }
        return Samples(samples).median
    }

    /// One job submitted to a dispatcher with one daemon online, and answered.
    private static func dispatcherRound(_ rounds: Int) async throws -> Double {
        var state = DispatcherState(slotCount: 1, mode: .dispatcher, cancellationGrace: .milliseconds(50), maxStartFailures: 3, launchesProcesses: false) { "probe" }
        _ = state.start()
        let link = DiscardingLink()
        let (admission, _) = state.daemonAuthenticated(token: "probe", pid: 1, connect: { _ in link }, welcome: { index, instance in
            .welcome(Welcome(daemonIndex: UInt32(index), instance: UInt32(instance), proof: []))
        })
        guard case .accepted(let slot, let instance) = admission else { throw DaemonsError("the probe's dispatcher refused its daemon") }
        let resolver = DiscardingResolver()
        var id: UInt64 = 0
        let payload = Envelope(payload: ByteBuffer())
        return await median(rounds) {
            id += 1
            _ = state.submit(id: id, jobType: "probe", envelope: payload, resolver: resolver, timeout: nil, retries: nil)
            _ = state.jobFinished(slot: slot, instance: instance, requestID: id, completion: .value(payload), at: .now)
        }
    }

    /// `output` encoded as a daemon sends it, resolving a handle that is then read.
    private static func resolution<Output: Codable & Sendable & Equatable>(_ output: Output, _ rounds: Int) async throws -> Double {
        let envelope = try Envelope(encoding: output, inlineLimit: 1 << 20, actorSystem: nil)
        return try await median(rounds) {
            let handle = JobHandle<Output>(id: 1, jobType: "probe", canceller: nil)
            handle.resolve(.value(envelope))
            guard try await handle.value == output else { throw DaemonsError("the probe's handle resolved with another value") }
        }
    }

    /// The time from `execute` on a task's thread to the closure running on the (idle,
    /// sleeping) event loop.
    private static func loopHop(_ rounds: Int) async -> Double {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        return await wakeUps(rounds) { started, done in
            let start = ContinuousClock.now
            loop.execute { started(start) ; done() }
        }
    }

    /// The time from resuming a continuation on the event loop to the awaiting task running.
    private static func continuationResume(_ rounds: Int) async -> Double {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let clock = ContinuousClock()
        var samples: [Double] = []
        for index in 0..<(rounds * 200 + 50) {
            let resumedAt = Mutex<ContinuousClock.Instant?>(nil)
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // The loop resumes the task after a pause, when the task's thread sleeps.
                loop.scheduleTask(in: .microseconds(200)) {
                    resumedAt.withLock { $0 = clock.now }
                    continuation.resume()
                }
            }
            let now = clock.now
            if index >= 50, let resumed = resumedAt.withLock({ $0 }) { samples.append((now - resumed).microseconds) }
        }
        return Samples(samples).median
    }

    /// Median wake-up time of `signal`, which records when it starts and calls `done` on
    /// the woken thread, once the waiting task sleeps.
    private static func wakeUps(_ rounds: Int, _ signal: (@escaping @Sendable (ContinuousClock.Instant) -> Void, @escaping @Sendable () -> Void) -> Void) async -> Double {
        var samples: [Double] = []
        for index in 0..<(rounds * 200 + 50) {
            let started = Mutex<ContinuousClock.Instant?>(nil)
            let ranAt = Mutex<ContinuousClock.Instant?>(nil)
            try? await Task.sleep(for: .microseconds(200))
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                signal({ start in started.withLock { $0 = start }; ranAt.withLock { $0 = .now } }, { continuation.resume() })
            }
            if index >= 50, let start = started.withLock({ $0 }), let ran = ranAt.withLock({ $0 }) { samples.append((ran - start).microseconds) }
        }
        return Samples(samples).median
    }

    /// A task started with `Task.immediate` that finishes without suspending.
    private static func taskStart(_ rounds: Int) async -> Double {
        await median(rounds) { _ = Task.immediate { () async -> Int in 1 } }
    }

    /// `write(2)` of `frame` on a Unix socket pair, its peer draining it after each batch.
    private static func socketWrite(_ frame: ByteBuffer, _ rounds: Int) -> Double {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { return .nan }
        defer { close(pair[0]); close(pair[1]) }
        let bytes = Array(frame.readableBytesView)
        var sink = [UInt8](repeating: 0, count: 1 << 16)
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<(rounds + 1) {
            var elapsed = Duration.zero
            for _ in 0..<(batch / 20) {
                let start = clock.now
                for _ in 0..<20 { _ = bytes.withUnsafeBytes { write(pair[0], $0.baseAddress, $0.count) } }
                elapsed += clock.now - start
                for _ in 0..<20 { _ = read(pair[1], &sink, bytes.count) }
            }
            samples.append(elapsed.microseconds / Double(batch))
        }
        return Samples(Array(samples.dropFirst())).median
    }
}

/// A daemon link that drops what it is sent (the probe's dispatcher has no daemon).
private final class DiscardingLink: DaemonLink {
    func enqueue(_ message: OutgoingMessage) {}
    func enqueueClose() {}
    func flush() {}
    var peerAddress: String? { nil }
    var lentSharedMemoryBytes: Int { 0 }
}

/// A resolver that accepts every resolution.
private final class DiscardingResolver: JobResolver {
    func resolve(_ outcome: JobOutcome) -> Bool { true }
}
