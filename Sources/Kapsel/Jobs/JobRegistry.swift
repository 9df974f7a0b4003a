import KapselSharedMemory
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

    /// Decodes and runs the job in `request` (its shared memory in `attachments`), and
    /// reports how it ended; large arrays of the output go into shared memory.
    func run(_ request: RunRequest, attachments: SharedAttachmentReader?, inlineLimit: Int) async -> RunCompletion {
        guard let type = types[request.jobType] else {
            return RunCompletion(outcome: .failure(FailureReport(
                reason: .unknownJobType,
                errorType: "Kapsel.UnknownJobType",
                message: "this daemon has no job type named '\(request.jobType)'; list it in Kapsel.bootstrap(jobs:) of the daemon executable (it knows: \(names.joined(separator: ", ")))",
                location: "daemon registry"
            )), attachments: [])
        }
        return await type.decodeAndRun(request.payload, attachments: attachments, inlineLimit: inlineLimit)
    }
}

/// How a job ended, with the shared memory its output refers to.
struct RunCompletion: Sendable {
    var outcome: RunOutcome
    var attachments: [SharedStorage]
}

extension Job {
    static func decodeAndRun(_ payload: ByteBuffer, attachments: SharedAttachmentReader?, inlineLimit: Int) async -> RunCompletion {
        func failure(_ reason: FailureReport.Reason, _ error: any Error, _ message: String, at location: String) -> RunCompletion {
            RunCompletion(outcome: .failure(FailureReport(reason: reason, errorType: String(reflecting: type(of: error)), message: message, location: location)), attachments: [])
        }
        let job: Self
        do {
            let system = DaemonContext.current?.actorSystem
            job = try CompactDecoder(userInfo: system.map { [.actorSystemKey: $0] } ?? [:]).decode(Self.self, from: payload, attachments: attachments)
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
            let writer = SharedAttachmentWriter(inlineLimit: inlineLimit)
            let system = DaemonContext.current?.actorSystem
            let bytes = try CompactEncoder(userInfo: system.map { [.actorSystemKey: $0] } ?? [:]).encode(output, attachments: writer)
            return RunCompletion(outcome: .value(bytes), attachments: writer.storages)
        } catch {
            return failure(.resultEncodingFailed, error, "the output of \(jobTypeName) does not encode: \(error)", at: "encoding \(String(reflecting: Output.self))")
        }
    }
}
