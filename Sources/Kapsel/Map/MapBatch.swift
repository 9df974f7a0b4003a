#if canImport(Glibc)
import Glibc
#endif

/// A batch of a map's items, run one after another in one daemon. Each item's failure
/// is kept with the item, so one failing item never loses the others' results.
/// Registered in every daemon for every job type it knows.
struct MapBatch<Item: Job>: Job {
    var items: [Item]

    /// The synthesized conformance's key, named here for the compact fast path.
    enum CodingKeys: String, CodingKey { case items }

    static var jobTypeName: String { TypeNames.name(of: Self.self) { "kapsel.batch:" + Item.jobTypeName } }

    struct Output: Codable, Sendable {
        var outcomes: [MapItemOutcome<Item.Output>]
        /// How long running the items took in the daemon, to size the next batches.
        var runNanoseconds: Int64

        /// The synthesized conformance's keys, named here for the compact fast path.
        enum CodingKeys: String, CodingKey { case outcomes, runNanoseconds }
    }

    func run() async throws -> Output {
        let clock = ContinuousClock()
        let start = clock.now
        var outcomes: [MapItemOutcome<Item.Output>] = []
        outcomes.reserveCapacity(items.count)
        for item in items {
            try Task.checkCancellation()
            do {
                outcomes.append(.success(try await item.run()))
            } catch {
                let location = (error as? any LocatedError)?.sourceLocation ?? "\(Item.jobTypeName).run()"
                outcomes.append(.failure(MapItemFailure(errorType: String(reflecting: type(of: error)), message: String(describing: error), location: location)))
            }
        }
        let elapsed = clock.now - start
        return Output(outcomes: outcomes, runNanoseconds: elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}

/// How one item of a batch ended.
///
/// Coded by hand as a pair (a tag, then the output or the failure) rather than as the
/// synthesized keyed form with its nested containers: a batch's results are decoded on
/// the host's event loop, item by item, so this is on every item's path (and the
/// compact coder's fast path for a batch's output writes the same pairs).
enum MapItemOutcome<Output: Codable & Sendable>: Codable, Sendable {
    case success(Output)
    case failure(MapItemFailure)

    static var successTag: Int { 0 }
    static var failureTag: Int { 1 }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        switch self {
        case .success(let output):
            try container.encode(Self.successTag)
            try container.encode(output)
        case .failure(let failure):
            try container.encode(Self.failureTag)
            try container.encode(failure)
        }
    }

    init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        switch try container.decode(Int.self) {
        case Self.successTag: self = .success(try container.decode(Output.self))
        case Self.failureTag: self = .failure(try container.decode(MapItemFailure.self))
        case let tag: throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown item outcome \(tag)")
        }
    }
}

/// An item's error, as the daemon saw it.
struct MapItemFailure: Codable, Sendable {
    var errorType: String
    var message: String
    var location: String
}

extension Job {
    /// The job type that runs a batch of this type's jobs.
    static var batchJobType: any Job.Type { MapBatch<Self>.self }
}
