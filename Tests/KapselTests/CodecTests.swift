import Kapsel
import KapselTestJobs
import Testing

/// A codec that cannot represent its value.
enum RefusingCodec: TransportCodec {
    struct Refusal: Error {}
    static func represent(_ value: CBuffer) throws -> [Double] { throw Refusal() }
    static func restore(_ values: [Double]) throws -> CBuffer { CBuffer(count: values.count) { values[$0] } }
}

/// A job whose field its codec refuses to carry (never sent: it fails in the host).
struct SendTheUnsendable: Job {
    @Transported<RefusingCodec> var buffer: CBuffer
    func run() async throws -> Int { buffer.count }
}

extension ProcessTests {
    /// A type that is not `Codable` — memory from `malloc` — crossing with its codec.
    @Suite("Codecs for foreign types: a C buffer through a job and an actor call")
    struct CodecTests {
        @Test func aCBufferRoundTripsThroughAJob() async throws {
            try await withTestDaemons(1) { daemons in
                let input = CBuffer(count: 100_000) { Double($0) }
                let output = try await daemons.submit(ScaleCBuffer(input, by: 3)).value.wrappedValue
                #expect(output.count == 100_000)
                #expect(output.values == input.values.map { $0 * 3 })
                #expect(output.pointer != input.pointer)
            }
        }

        @Test func aCBufferRoundTripsThroughAnActorCall() async throws {
            try await withTestDaemons(1) { daemons in
                let counter = try await daemons.spawn(Counter.self, configuration: 0)
                let input = CBuffer(count: 1000) { Double($0) }
                let result = try await counter.sumAndScale(Transported(input, using: CBufferCodec.self), by: 2)
                #expect(result.sum == 499_500)
                #expect(result.scaled.wrappedValue.values == input.values.map { $0 * 2 })
            }
        }

        @Test func aCodecThatThrowsFailsTheJobInTheHost() async throws {
            try await withTestDaemons(1) { daemons in
                let job = SendTheUnsendable(buffer: CBuffer(count: 3) { Double($0) })
                guard case .failure(let error) = await daemons.submit(job).result else {
                    Issue.record("a value its codec refuses cannot be sent")
                    return
                }
                #expect(error.code == .jobEncodingFailed)
                #expect(error.message.contains("Refusal"))
                let echoed = try await daemons.submit(Echo(1)).value
                #expect(echoed == 1)
            }
        }
    }
}
