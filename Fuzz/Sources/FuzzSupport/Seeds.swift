import Foundation
import KapselWire
import NIOCore

/// The secret and nonces of the handshake harness, so that its seeds sign right.
public enum HandshakeFixture {
    /// The host's secret.
    public static let secret = HostSecret(bytes: Array(repeating: 7, count: 32))
    /// The host's nonce in its challenge.
    public static let hostNonce = [UInt8](repeating: 1, count: 32)
    /// The daemon's nonce in its hello.
    public static let daemonNonce = [UInt8](repeating: 2, count: 32)
}

/// The seed corpus: the bytes real connections carry, made with the same encoders they
/// use, per fuzz target.
public enum Seeds {
    /// With `KAPSEL_FUZZ_SEEDS=<folder>` in the environment: writes `target`'s seeds
    /// into the folder as `seed-N` and exits. Otherwise returns 0 (for `LLVMFuzzerInitialize`).
    public static func writeIfAsked(for target: String) -> CInt {
        guard let folder = ProcessInfo.processInfo.environment["KAPSEL_FUZZ_SEEDS"] else { return 0 }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for (index, input) in try all()[target, default: []].enumerated() {
                try Data(input).write(to: URL(fileURLWithPath: folder).appendingPathComponent("seed-\(index)"))
            }
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("cannot write the seeds of \(target) into \(folder): \(error)\n".utf8))
            exit(1)
        }
    }

    /// Seed inputs by fuzz target name.
    public static func all() throws -> [String: [[UInt8]]] {
        let messages = try traffic()
        let frames = messages.map(bytes)
        let stream = frames.reduce([], +)
        let fixture = HandshakeFixture.self
        let hello = Hello(
            pid: 4242, token: "token", nonce: fixture.daemonNonce,
            proof: fixture.secret.daemonProof(hostNonce: fixture.hostNonce, daemonNonce: fixture.daemonNonce, token: "token")
        )
        let welcome = Welcome(daemonIndex: 0, instance: 1, proof: fixture.secret.hostProof(hostNonce: fixture.hostNonce, daemonNonce: fixture.daemonNonce))
        let fromDaemon = [bytes(.hello(hello))] + messages.filter(isDaemons).map(bytes)
        let fromHost = [bytes(.challenge(Challenge(nonce: fixture.hostNonce))), bytes(.welcome(welcome))] + messages.filter { !isDaemons($0) }.map(bytes)
        // The first byte of a frames seed is where the harness cuts the stream; of a
        // handshake seed, the side (bit 0: the daemon's) and whether it signs (bit 1).
        var framesSeeds: [[UInt8]] = frames.map { [0] + $0 }
        framesSeeds.append([0] + stream)
        framesSeeds.append([UInt8(stream.count / 2 % 256)] + stream)
        let daemonSays: [UInt8] = fromDaemon.reduce([], +)
        let hostSays: [UInt8] = fromHost.reduce([], +)
        let handshakeSeeds: [[UInt8]] = [[0] + daemonSays, [2] + daemonSays, [1] + hostSays, [3] + hostSays, [0] + fromDaemon[0], [1] + fromHost[0]]
        let compactSeeds: [[UInt8]] = try samples().map { Array(buffer: try CompactEncoder().encode($0)) }
        return ["FuzzFrames": framesSeeds, "FuzzHandshake": handshakeSeeds, "FuzzCompact": compactSeeds, "FuzzStreamedAttachments": streamed()]
    }

    /// Whether a daemon sends `message` once admitted (the host: the rest).
    static func isDaemons(_ message: WireMessage) -> Bool {
        switch message {
        case .result, .callResult, .actorCount, .heartbeat, .retiring, .released: true
        default: false
        }
    }

    /// One message of each kind, with payloads as jobs and results carry them.
    static func traffic() throws -> [WireMessage] {
        let payload = try CompactEncoder().encode(samples()[1])
        let actor = WireActorID(creator: 1, instance: 1, serial: 3)
        let info = AttachmentInfo(byteCount: 1000, releaseToken: 5)
        return [
            .challenge(Challenge(nonce: HandshakeFixture.hostNonce)),
            .hello(Hello(pid: 1, token: "t", nonce: HandshakeFixture.daemonNonce, proof: Array(repeating: 9, count: 32), batchJob: "slurm 12")),
            .welcome(Welcome(daemonIndex: 2, instance: 3, proof: Array(repeating: 8, count: 32))),
            .refused("authentication failed"),
            .run(RunRequest(requestID: 1, jobType: "MyApp.Fit", payload: payload)),
            .run(RunRequest(requestID: 2, jobType: "MyApp.Sum", attachments: [info], payload: payload)),
            .cancel(requestID: 1),
            .result(RunResult(requestID: 1, outcome: .value(payload))),
            .result(RunResult(requestID: 2, outcome: .failure(FailureReport(reason: .thrown, errorType: "MyApp.Bad", message: "no", location: "Fit.swift:3")))),
            .shutdown,
            .released(tokens: [5, 6]),
            .call(CallRequest(callID: 7, kind: .invoke, actor: actor, name: "add", attachments: [info], payload: payload)),
            .callResult(RunResult(requestID: 7, outcome: .value(payload), attachments: [info])),
            .releaseActors([ActorRelease(actor: actor, count: 2)]),
            .actorCount(3),
            .heartbeat,
            .retiring(exitCode: 0),
            .attachmentChunk(AttachmentChunk(tag: 2, index: 0, byteCount: 1000, offset: 0, bytes: ByteBuffer(repeating: 3, count: 1000))),
            .releasesWanted,
            .forget(names: [11]),
        ]
    }

    /// Attachments streamed ahead of the messages that hand them over, whole and in
    /// several chunks.
    static func streamed() -> [[UInt8]] {
        func chunks(tag: UInt64, index: UInt32, length: Int, chunk: Int) -> [UInt8] {
            stride(from: 0, to: length, by: chunk).map { offset in
                let count = min(chunk, length - offset)
                let bytes = ByteBuffer(bytes: (0..<count).map { UInt8(truncatingIfNeeded: offset + $0) })
                return Seeds.bytes(.attachmentChunk(AttachmentChunk(tag: tag, index: index, byteCount: UInt64(length), offset: UInt64(offset), bytes: bytes)))
            }.reduce([], +)
        }
        let payload = ByteBuffer(bytes: [0])
        let one = chunks(tag: 1, index: 0, length: 1000, chunk: 1000)
            + bytes(.run(RunRequest(requestID: 1, jobType: "Sum", attachments: [AttachmentInfo(byteCount: 1000)], payload: payload)))
        let two = chunks(tag: 4, index: 0, length: 700, chunk: 256) + chunks(tag: 4, index: 1, length: 300, chunk: 128)
            + bytes(.result(RunResult(requestID: 4, outcome: .value(payload), attachments: [AttachmentInfo(byteCount: 700), AttachmentInfo(byteCount: 300)])))
        let short = chunks(tag: 5, index: 0, length: 500, chunk: 200).dropLast(100)
        return [one, two, one + two, Array(short)]
    }

    /// Values with every shape the compact harness decodes.
    static func samples() -> [Sample] {
        let leaf = Sample(
            id: 1, small: 2, signed: -3, ratio: 0.5, flag: nil, name: "", tags: [], values: [], raw: [], counts: [:], choice: .none, children: []
        )
        let full = Sample(
            id: -77, small: 255, signed: .min, ratio: .pi, flag: true, name: "posterior draws ü", tags: ["a", "bb"], values: [1, 2.5, -0.0, .infinity],
            raw: Array(0..<64), counts: ["chains": 4, "iter": 500], choice: .pair("x", 2), children: [leaf]
        )
        return [leaf, full, Sample(
            id: 0, small: 0, signed: 0, ratio: .nan, flag: false, name: "n", tags: ["t"], values: Array(repeating: 1, count: 100), raw: [1],
            counts: ["": 0], choice: .nested(full), children: [full, leaf]
        )]
    }

    /// `message` as one frame's bytes.
    static func bytes(_ message: WireMessage) -> [UInt8] {
        Array(buffer: message.frame())
    }
}
