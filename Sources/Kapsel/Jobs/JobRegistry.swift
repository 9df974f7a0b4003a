import KapselWire

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

    /// Decodes and runs the job `jobType` (`envelope`), and reports how it ended; large
    /// arrays of the output go into shared memory.
    func run(_ jobType: String, _ envelope: Envelope, inlineLimit: Int) async -> Completion {
        guard let type = types[jobType] else {
            return .failure(FailureReport(
                reason: .unknownJobType,
                errorType: "Kapsel.UnknownJobType",
                message: "this daemon has no job type named '\(jobType)'; list it in Kapsel.bootstrap(jobs:) of the daemon executable (it knows: \(names.joined(separator: ", ")))",
                location: "daemon registry"
            ))
        }
        return await type.decodeAndRun(envelope, inlineLimit: inlineLimit)
    }
}

extension Job {
    static func decodeAndRun(_ envelope: Envelope, inlineLimit: Int) async -> Completion {
        func failure(_ reason: FailureReport.Reason, _ error: any Error, _ message: String, at location: String) -> Completion {
            .failure(FailureReport(reason: reason, errorType: String(reflecting: type(of: error)), message: message, location: location))
        }
        let system = DaemonContext.current?.actorSystem
        let job: Self
        do {
            job = try envelope.decode(Self.self, actorSystem: system)
        } catch {
            return failure(.jobDecodingFailed, error, "the job's bytes do not decode as \(jobTypeName): \(error)", at: "decoding \(jobTypeName)")
        }
        let output: Output
        do {
            output = try await job.run()
        } catch {
            if error is CancellationError, Task.isCancelled {
                return failure(.cancelled, error, "the job stopped after it was cancelled", at: "\(jobTypeName).run()")
            }
            let location = (error as? any LocatedError)?.sourceLocation ?? "\(jobTypeName).run()"
            return failure(.thrown, error, String(describing: error), at: location)
        }
        do {
            return .value(try Envelope(encoding: output, inlineLimit: inlineLimit, actorSystem: system))
        } catch {
            return failure(.resultEncodingFailed, error, "the output of \(jobTypeName) does not encode: \(error)", at: "encoding \(String(reflecting: Output.self))")
        }
    }
}
