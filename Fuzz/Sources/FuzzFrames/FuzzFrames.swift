// libFuzzer target: a peer's byte stream through the frame decoder and the message
// parser. Malformed input must end in a `WireError` (the connection closes with it),
// never a crash; whatever parses must be written back as the same message.
import CFuzzDriver
import FuzzSupport
import KapselWire
import NIOCore

// SwiftPM links a debug executable's `main` to `<module>_main`; libFuzzer's own `main`
// takes precedence, and this one would do the same.
@_cdecl("FuzzFrames_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzFrames($0, size) } ?? 0 }
}

/// Before fuzzing: with `KAPSEL_FUZZ_SEEDS=<folder>`, writes the seed corpus there and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked(for: "FuzzFrames")
}

/// One input: the fuzzer calls it millions of times.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: start, count: count))
    guard let split = input.first else { return 0 }
    // The first byte says where the stream is cut in two reads, as a socket may.
    let stream = input.dropFirst()
    let cut = Int(split) % (stream.count + 1)
    var decoder = FrameDecoder(limits: WireLimits(maxFrameLength: 1 << 20), handshakeFrames: 1)
    var buffer = ByteBuffer(bytes: stream.prefix(cut))
    do {
        try drain(&decoder, &buffer)
        buffer.writeBytes(stream.dropFirst(cut))
        try drain(&decoder, &buffer)
    } catch {
        // The connection would end here, with this error.
    }
    return 0
}

/// Parses every whole frame in `buffer`, checking that each is written back as itself.
private func drain(_ decoder: inout FrameDecoder, _ buffer: inout ByteBuffer) throws(WireError) {
    while let message = try decoder.nextMessage(from: &buffer) {
        var written = message.frame()
        var reader = FrameDecoder(limits: WireLimits(maxFrameLength: Int(UInt32.max)), handshakeFrames: 0)
        let again = try reader.nextMessage(from: &written)
        precondition(again == message && written.readableBytes == 0, "\(message) was written back as \(String(describing: again))")
    }
}
