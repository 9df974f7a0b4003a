import KapselWire
import NIOCore

/// The job types a daemon can run, by their stable names.
public struct JobRegistry: Sendable {
    private var types: [String: any Job.Type] = [:]

    /// A registry of `types`. Two types with the same `jobTypeName` are a programming
    /// error and stop the program.
    public init(_ types: [any Job.Type]) {
        for type in types { register(type) }
    }

    /// Adds `type`.
    public mutating func register(_ type: any Job.Type) {
        let name = type.jobTypeName
        if let existing = types[name], existing != type {
            preconditionFailure("kapsel: job types \(existing) and \(type) share the name '\(name)'")
        }
        types[name] = type
    }

    /// Whether a type is registered under `name`.
    public func contains(_ name: String) -> Bool { types[name] != nil }

    /// The names of all registered types, sorted.
    public var names: [String] { types.keys.sorted() }

    /// Decodes and runs the job in `request`, and reports how it ended.
    func run(_ request: RunRequest) async -> RunOutcome {
        guard let type = types[request.jobType] else {
            return .failure(FailureReport(
                reason: .unknownJobType,
                errorType: "Kapsel.UnknownJobType",
                message: "this daemon has no job type named '\(request.jobType)'; list it in Kapsel.bootstrap(jobs:) of the daemon executable (it knows: \(names.joined(separator: ", ")))",
                location: "daemon registry"
            ))
        }
        return await type.decodeAndRun(request.payload)
    }
}

extension Job {
    static func decodeAndRun(_ payload: ByteBuffer) async -> RunOutcome {
        let job: Self
        do {
            job = try CompactDecoder().decode(Self.self, from: payload)
        } catch {
            return .failure(FailureReport(reason: .jobDecodingFailed, errorType: String(reflecting: type(of: error)), message: "the job's bytes do not decode as \(jobTypeName): \(error)", location: "decoding \(jobTypeName)"))
        }
        let output: Output
        do {
            output = try await job.run()
        } catch {
            if error is CancellationError, Task.isCancelled {
                return .failure(FailureReport(reason: .cancelled, errorType: String(reflecting: type(of: error)), message: "the job stopped after it was cancelled", location: "\(jobTypeName).run()"))
            }
            let location = (error as? any LocatedError)?.sourceLocation ?? "\(jobTypeName).run()"
            return .failure(FailureReport(reason: .thrown, errorType: String(reflecting: type(of: error)), message: String(describing: error), location: location))
        }
        do {
            return .value(try CompactEncoder().encode(output))
        } catch {
            return .failure(FailureReport(reason: .resultEncodingFailed, errorType: String(reflecting: type(of: error)), message: "the output of \(jobTypeName) does not encode: \(error)", location: "encoding \(String(reflecting: Output.self))"))
        }
    }
}
