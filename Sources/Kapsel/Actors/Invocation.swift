import Distributed
import KapselSharedMemory
import KapselWire
import NIOCore
import Synchronization

/// Records a remote call's generic substitutions and arguments in the compact format;
/// large arguments (`SharedArray`s) become shared-memory attachments.
public struct KapselInvocationEncoder: DistributedTargetInvocationEncoder {
    public typealias SerializationRequirement = Codable

    private let system: KapselActorSystem
    private var substitutions: [String] = []
    private var arguments: [any Encodable] = []
    let attachments: SharedAttachmentWriter

    init(system: KapselActorSystem, inlineLimit: Int) {
        self.system = system
        attachments = SharedAttachmentWriter(inlineLimit: inlineLimit)
    }

    public mutating func recordGenericSubstitution<T>(_ type: T.Type) throws {
        guard let name = _mangledTypeName(type) else {
            throw ActorSystemError("the generic argument \(type) has no mangled name to send")
        }
        substitutions.append(name)
    }

    public mutating func recordArgument<Value: Codable>(_ argument: RemoteCallArgument<Value>) throws {
        arguments.append(argument.value)
    }

    public mutating func recordErrorType<E: Error>(_ type: E.Type) throws {}

    public mutating func recordReturnType<R: Codable>(_ type: R.Type) throws {}

    public mutating func doneRecording() throws {}

    /// The call as it travels: the substitutions, then the arguments, in one sequence,
    /// with the shared memory they refer to.
    func envelope() throws -> Envelope {
        let sequence = CompactSequenceEncoder(userInfoEntry: Envelope.userInfoEntry(system), attachments: attachments)
        try sequence.append(substitutions)
        for argument in arguments { try sequence.append(argument) }
        return Envelope(payload: sequence.finish(), attachments: attachments.storages)
    }
}

/// Reads a remote call's generic substitutions and arguments, in the daemon.
public final class KapselInvocationDecoder: DistributedTargetInvocationDecoder {
    public typealias SerializationRequirement = Codable

    private let substitutions: [String]
    private let arguments: CompactSequenceDecoder

    init(_ envelope: Envelope, system: KapselActorSystem) throws {
        arguments = try CompactSequenceDecoder(envelope.payload, userInfoEntry: Envelope.userInfoEntry(system), attachments: envelope.attachmentReader)
        substitutions = try arguments.next([String].self)
    }

    public func decodeGenericSubstitutions() throws -> [any Any.Type] {
        try substitutions.map { name in
            guard let type = _typeByName(name) else { throw ActorSystemError("the type \(name) of a generic argument is unknown in this daemon") }
            return type
        }
    }

    public func decodeNextArgument<Argument: Codable>() throws -> Argument {
        try arguments.next(Argument.self)
    }

    public func decodeErrorType() throws -> (any Any.Type)? { nil }

    public func decodeReturnType() throws -> (any Any.Type)? { nil }
}

/// Receives the end of a call executed in the daemon and encodes it for the host.
public struct KapselResultHandler: DistributedTargetInvocationResultHandler {
    public typealias SerializationRequirement = Codable

    private let system: KapselActorSystem
    private let inlineLimit: Int
    private let box = CompletionBox()
    private let target: String

    init(system: KapselActorSystem, inlineLimit: Int, target: String) {
        self.system = system
        self.inlineLimit = inlineLimit
        self.target = target
    }

    public func onReturn<Success: Codable>(value: Success) async throws {
        do {
            finish(.value(try Envelope(encoding: value, inlineLimit: inlineLimit, actorSystem: system)))
        } catch {
            finish(.failure(FailureReport(reason: .resultEncodingFailed, errorType: String(reflecting: type(of: error)), message: "the result does not encode: \(error)", location: target)))
        }
    }

    public func onReturnVoid() async throws {
        finish(.value(Envelope(payload: try CompactEncoder().encode(true))))
    }

    public func onThrow<Err: Error>(error: Err) async throws {
        finish(.failure(report(for: error, at: target)))
    }

    private func finish(_ completion: Completion) {
        box.value.withLock { $0 = completion }
    }

    /// How the call ended; nil if the handler was never called.
    var completion: Completion? {
        box.value.withLock { $0 }
    }
}

/// Where a result handler leaves the end of its call.
private final class CompletionBox: Sendable {
    let value = Mutex<Completion?>(nil)
}

/// The failure report for an error a call (or a creation) threw.
func report(for error: any Error, at target: String) -> FailureReport {
    if error is CancellationError, Task.isCancelled {
        return FailureReport(reason: .cancelled, errorType: String(reflecting: type(of: error)), message: "the call stopped after it was cancelled", location: target)
    }
    let location = (error as? any LocatedError)?.sourceLocation ?? target
    return FailureReport(reason: .thrown, errorType: String(reflecting: type(of: error)), message: String(describing: error), location: location)
}

/// A misuse of the actor system, with what went wrong.
public struct ActorSystemError: DistributedActorSystemError, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
