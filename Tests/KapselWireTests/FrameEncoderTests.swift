import NIOCore
import Testing
@testable import KapselWire

/// The encoder makes the same frames as `WireMessage.frame()`, splitting off large
/// payloads instead of copying them.
@Suite("Frame encoder")
struct FrameEncoderTests {
    /// Head and payload, written one after the other.
    func joined(_ parts: (head: ByteBuffer, payload: ByteBuffer?)) -> ByteBuffer {
        var bytes = parts.head
        if var payload = parts.payload { bytes.writeBuffer(&payload) }
        return bytes
    }

    @Test func smallMessagesComeOutAsOneFrameLikeFrame() {
        let encoder = FrameEncoder()
        for message in FrameDecoderTests.messages {
            let parts = encoder.encode(message, allocator: ByteBufferAllocator())
            #expect(parts.payload == nil)
            #expect(parts.head == message.frame())
        }
    }

    @Test(arguments: [
        WireMessage.run(RunRequest(requestID: 1, jobType: "App.Big", attachments: [AttachmentInfo(byteCount: 8)], payload: ByteBuffer(repeating: 7, count: 100_000))),
        .call(CallRequest(callID: 2, kind: .invoke, actor: WireActorID(creator: 0, instance: 0, serial: 3), name: "fit", payload: ByteBuffer(repeating: 8, count: 20_000))),
        .result(RunResult(requestID: 3, outcome: .value(ByteBuffer(repeating: 9, count: 16 << 10)))),
        .callResult(RunResult(requestID: 4, outcome: .value(ByteBuffer(repeating: 1, count: 1 << 20)))),
        .attachmentChunk(AttachmentChunk(tag: 5, index: 0, byteCount: 1 << 20, offset: 0, bytes: ByteBuffer(repeating: 2, count: 256 << 10))),
    ])
    func largePayloadsGoApartUncopiedAndTheFrameStillParses(message: WireMessage) throws {
        let parts = FrameEncoder().encode(message, allocator: ByteBufferAllocator())
        let payload = try #require(parts.payload, "the payload is split off")
        #expect(parts.head.readableBytes < 128)
        #expect(payload.readableBytes >= 16 << 10)
        var bytes = joined(parts)
        #expect(bytes == message.frame())
        var decoder = FrameDecoder(limits: WireLimits(), handshakeFrames: 0)
        #expect(try decoder.nextMessage(from: &bytes) == message)
    }

    @Test func theCopyLimitDecidesWhatIsSplit() {
        let message = WireMessage.result(RunResult(requestID: 1, outcome: .value(ByteBuffer(repeating: 3, count: 100))))
        #expect(FrameEncoder(copyLimit: 100).encode(message, allocator: ByteBufferAllocator()).payload?.readableBytes == 100)
        #expect(FrameEncoder(copyLimit: 101).encode(message, allocator: ByteBufferAllocator()).payload == nil)
        let failure = WireMessage.result(RunResult(requestID: 1, outcome: .failure(FailureReport(reason: .thrown, errorType: "E", message: String(repeating: "x", count: 50_000), location: "l"))))
        #expect(FrameEncoder(copyLimit: 1).encode(failure, allocator: ByteBufferAllocator()).payload == nil, "only a value's bytes are a payload")
    }
}
