// libFuzzer target: the compact decoder on bytes that claim to be a job's arguments.
// Malformed input must throw, never crash or allocate without bound; whatever decodes
// must encode and decode to the same value.
import CFuzzDriver
import FuzzSupport
import KapselWire

// SwiftPM links a debug executable's `main` to `<module>_main`; libFuzzer's own `main`
// takes precedence, and this one would do the same.
@_cdecl("FuzzCompact_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzCompact($0, size) } ?? 0 }
}

/// Before fuzzing: with `KAPSEL_FUZZ_SEEDS=<folder>`, writes the seed corpus there and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked(for: "FuzzCompact")
}

/// One input: the fuzzer calls it millions of times.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCompact(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let value = try? CompactDecoder(limits: CompactLimits(maxDepth: 64)).decode(Sample.self, from: bytes) else { return 0 }
    do {
        let again = try CompactDecoder().decode(Sample.self, from: CompactEncoder().encode(value))
        precondition(again.sameAs(value), "\(value) decoded back as \(again)")
    } catch {
        preconditionFailure("\(value) does not encode and decode: \(error)")
    }
    return 0
}
