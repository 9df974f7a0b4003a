// libFuzzer target: attachments streamed by a remote peer, from its bytes through the
// frame decoder into the reader that reassembles them in shared memory. Nothing may
// crash or allocate past the limit; an attachment handed to a message is exactly the
// bytes its chunks carried, and one that did not arrive whole is refused.
import CFuzzDriver
import FuzzSupport
@testable import Kapsel
@testable import KapselSharedMemory
import KapselWire
import NIOCore

/// The largest attachment this harness lets a peer stream.
private let limit = 1 << 20

// SwiftPM links a debug executable's `main` to `<module>_main`; libFuzzer's own `main`
// takes precedence, and this one would do the same.
@_cdecl("FuzzStreamedAttachments_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzStreamedAttachments($0, size) } ?? 0 }
}

/// Before fuzzing: with `KAPSEL_FUZZ_SEEDS=<folder>`, writes the seed corpus there and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked(for: "FuzzStreamedAttachments")
}

/// One input: the fuzzer calls it millions of times.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamedAttachments(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var buffer = ByteBuffer(bytes: UnsafeBufferPointer(start: start, count: count))
    var decoder = FrameDecoder(limits: WireLimits(maxFrameLength: 1 << 20), handshakeFrames: 0)
    let reader = StreamedAttachments(maxAttachmentLength: limit)
    defer { reader.connectionClosed() }
    // What the chunks the reader took carried, per message tag and attachment index.
    var expected: [UInt64: [UInt32: [UInt8]]] = [:]
    while true {
        let message: WireMessage
        do throws(WireError) {
            guard let next = try decoder.nextMessage(from: &buffer) else { return 0 }
            message = next
        } catch {
            return 0
        }
        switch message {
        case .attachmentChunk(let chunk):
            do {
                try reader.received(chunk)
                precondition(chunk.byteCount <= UInt64(limit), "took a chunk of an attachment over the limit")
                expected[chunk.tag, default: [:]][chunk.index, default: []] += chunk.bytes.readableBytesView
            } catch {
                // The connection would end here, with this error.
                return 0
            }
        case .run(let request): deliver(request.attachments, tag: request.requestID, reader: reader, expected: &expected)
        case .call(let request): deliver(request.attachments, tag: request.callID, reader: reader, expected: &expected)
        case .result(let result), .callResult(let result): deliver(result.attachments, tag: result.requestID, reader: reader, expected: &expected)
        default: break
        }
    }
}

/// Hands a message's attachments over, checking them against what their chunks carried.
private func deliver(_ infos: [AttachmentInfo], tag: UInt64, reader: StreamedAttachments, expected: inout [UInt64: [UInt32: [UInt8]]]) {
    let sent = expected.removeValue(forKey: tag) ?? [:]
    guard let storages = try? reader.receiveAttachments(infos, tag: tag) else { return }
    precondition(storages.count == infos.count, "\(infos.count) attachments announced, \(storages.count) handed over")
    for (index, storage) in storages.enumerated() {
        let bytes = Array(UnsafeRawBufferPointer(start: storage.segment.payload, count: storage.segment.byteCount))
        precondition(UInt64(bytes.count) == infos[index].byteCount, "attachment \(index) has \(bytes.count) bytes, announced \(infos[index].byteCount)")
        precondition(bytes == sent[UInt32(index)] ?? [], "attachment \(index) is not the bytes its chunks carried")
    }
}
