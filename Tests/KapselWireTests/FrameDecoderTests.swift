import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing
@testable import KapselWire

@Suite("Frames and messages")
struct FrameDecoderTests {
    static let messages: [WireMessage] = [
        .challenge(Challenge(nonce: Array(repeating: 7, count: 32))),
        .hello(Hello(pid: 1234, token: "token-1", nonce: Array(repeating: 1, count: 32), proof: Array(repeating: 2, count: 32))),
        .hello(Hello(pid: 7, token: "", nonce: [1], proof: [2], batchJob: "slurm 1234")),
        .welcome(Welcome(daemonIndex: 3, instance: 9, proof: Array(repeating: 4, count: 32))),
        .refused("wrong secret"),
        .run(RunRequest(requestID: 42, jobType: "App.Simulate", payload: ByteBuffer(bytes: [1, 2, 3]))),
        .run(RunRequest(requestID: 43, jobType: "", payload: ByteBuffer())),
        .run(RunRequest(requestID: 44, jobType: "App.Sum", attachments: [AttachmentInfo(byteCount: 1 << 30), AttachmentInfo(byteCount: 8, releaseToken: 7)], payload: ByteBuffer(bytes: [5]))),
        .cancel(requestID: .max),
        .released(tokens: [1, 2, .max]),
        .released(tokens: []),
        .releasesWanted,
        .forget(names: [3, .max]),
        .result(RunResult(requestID: 46, outcome: .value(ByteBuffer()), attachments: [
            AttachmentInfo(byteCount: 800, releaseToken: 9, name: 4), AttachmentInfo(byteCount: 800, releaseToken: 10, name: 4, isKept: true),
        ])),
        .result(RunResult(requestID: 42, outcome: .value(ByteBuffer(bytes: [9])))),
        .result(RunResult(requestID: 45, outcome: .value(ByteBuffer(bytes: [9])), attachments: [AttachmentInfo(byteCount: 80)])),
        .result(RunResult(requestID: 44, outcome: .failure(FailureReport(reason: .thrown, errorType: "App.E", message: "bad ✗", location: "a.swift:3")))),
        .shutdown,
    ]

    func frame(_ message: WireMessage) -> ByteBuffer { message.frame() }

    @Test func decodesWholeByteByByteAndMessageByMessage() throws {
        // The verifier feeds each input whole, byte by byte, and all inputs at once.
        let pairs = Self.messages.map { (frame($0), [$0]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            FrameDecoder(limits: WireLimits(), handshakeFrames: 0)
        }
    }

    @Test func parsesEveryMessageBack() throws {
        for message in Self.messages {
            var buffer = frame(message)
            var decoder = FrameDecoder(limits: WireLimits(), handshakeFrames: 0)
            #expect(try decoder.nextMessage(from: &buffer) == message)
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func refusesAnOversizedLengthBeforeReadingTheBody() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(limits: WireLimits(maxFrameLength: 1024), handshakeFrames: 0)))
        var buffer = channel.allocator.buffer(capacity: 4)
        buffer.writeInteger(UInt32.max)
        #expect {
            try channel.writeInbound(buffer)
        } throws: { error in
            (error as? WireError)?.code == .oversizedFrame && "\(error)".contains("4294967295 bytes exceeds the limit of 1024")
        }
    }

    @Test func appliesTheSmallHandshakeLimitToTheFirstFramesOnly() throws {
        let limits = WireLimits(maxFrameLength: 1 << 20, maxHandshakeFrameLength: 128)
        let big = WireMessage.run(RunRequest(requestID: 1, jobType: "x", payload: ByteBuffer(repeating: 0, count: 1000)))
        var decoder = FrameDecoder(limits: limits, handshakeFrames: 1)
        var first = frame(big)
        #expect(throws: WireError.self) { try decoder.nextMessage(from: &first) }

        var afterHandshake = FrameDecoder(limits: limits, handshakeFrames: 1)
        var both = frame(.challenge(Challenge(nonce: [1, 2])))
        both.writeImmutableBuffer(frame(big))
        #expect(try afterHandshake.nextMessage(from: &both)?.kindName == "challenge")
        #expect(try afterHandshake.nextMessage(from: &both) == big)
    }

    @Test func refusesMalformedBodies() throws {
        func body(_ bytes: [UInt8]) -> ByteBuffer {
            var buffer = ByteBuffer()
            buffer.writeInteger(UInt32(bytes.count))
            buffer.writeBytes(bytes)
            return buffer
        }
        let cases: [([UInt8], String)] = [
            ([], "empty frame"),
            ([0xEE], "unknown message kind 238"),
            ([WireMessage.Kind.cancel.rawValue, 1, 2], "frame ends inside the request id"),
            ([WireMessage.Kind.refused.rawValue, 0, 0, 0, 9, 65], "claims 9 bytes but only 1 remain"),
            ([WireMessage.Kind.shutdown.rawValue, 0], "1 unexpected bytes after a shutdown message"),
            ([WireMessage.Kind.challenge.rawValue, 1, 2, 3], "not a Kapsel host"),
            ([WireMessage.Kind.result.rawValue, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 99], "unknown result status 99"),
            ([WireMessage.Kind.result.rawValue, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF], "65535 attachments exceed the limit of 250"),
            ([WireMessage.Kind.released.rawValue, 0xFF, 0xFF, 0xFF, 0xFF], "4294967295 release tokens claimed"),
            ([WireMessage.Kind.forget.rawValue, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1], "2 names claimed"),
            ([WireMessage.Kind.result.rawValue, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1] + [UInt8](repeating: 0, count: 24) + [1], "kept must be named"),
            ([WireMessage.Kind.result.rawValue, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1] + [UInt8](repeating: 0, count: 23) + [1, 2], "kept must be named (flag 2"),
        ]
        for (bytes, expected) in cases {
            var buffer = body(bytes)
            var decoder = FrameDecoder(limits: WireLimits(), handshakeFrames: 0)
            #expect {
                try decoder.nextMessage(from: &buffer)
            } throws: { error in
                (error as? WireError)?.code == .malformedFrame && "\(error)".contains(expected)
            }
        }
    }

    @Test func payloadsAreSlicesNotCopies() throws {
        let payload = ByteBuffer(repeating: 5, count: 4096)
        var buffer = frame(.run(RunRequest(requestID: 1, jobType: "t", payload: payload)))
        var decoder = FrameDecoder(limits: WireLimits(), handshakeFrames: 0)
        guard case .run(let request) = try decoder.nextMessage(from: &buffer) else {
            Issue.record("expected a run message")
            return
        }
        let frameStorage = buffer.withUnsafeReadableBytes { $0.baseAddress! } - buffer.readerIndex
        let payloadStart = request.payload.withUnsafeReadableBytes { $0.baseAddress! }
        #expect(payloadStart > frameStorage && payloadStart < frameStorage + buffer.capacity)
    }
}
