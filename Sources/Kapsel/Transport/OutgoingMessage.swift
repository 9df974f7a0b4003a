import KapselSharedMemory
import KapselWire

/// A message on its way to the peer. The kinds that carry a value carry it as an
/// `Envelope`; the connection's carrier moves the envelope's shared memory and builds the
/// wire message once, announcing that memory as it goes (`message(announcing:)`).
enum OutgoingMessage: Sendable {
    /// A message that carries no value (or only a failure).
    case plain(WireMessage)
    /// Host → daemon: run a job.
    case run(requestID: UInt64, jobType: String, Envelope)
    /// Host → daemon: create an actor or call one.
    case call(callID: UInt64, kind: CallRequest.Kind, actor: WireActorID, name: String, Envelope)
    /// Daemon → host: a job's value.
    case result(requestID: UInt64, Envelope)
    /// Daemon → host: a call's (or a creation's) value.
    case callResult(requestID: UInt64, Envelope)

    /// A daemon's answer to request `requestID`, as a job's result or a call's.
    static func reply(to requestID: UInt64, _ completion: Completion, isCall: Bool) -> OutgoingMessage {
        switch completion {
        case .value(let envelope):
            isCall ? .callResult(requestID: requestID, envelope) : .result(requestID: requestID, envelope)
        case .failure(let report):
            failure(requestID, report, isCall: isCall)
        }
    }

    private static func failure(_ requestID: UInt64, _ report: FailureReport, isCall: Bool) -> OutgoingMessage {
        let result = RunResult(requestID: requestID, outcome: .failure(report))
        return .plain(isCall ? .callResult(result) : .result(result))
    }

    /// The shared memory that travels with the message.
    var attachments: [SharedStorage] {
        switch self {
        case .plain: []
        case .run(_, _, let envelope), .call(_, _, _, _, let envelope), .result(_, let envelope), .callResult(_, let envelope):
            envelope.attachments
        }
    }

    /// The id that tags the message's attachments (its request or call id).
    var tag: UInt64 {
        switch self {
        case .plain: 0
        case .run(let id, _, _), .call(let id, _, _, _, _), .result(let id, _), .callResult(let id, _): id
        }
    }

    /// The message as it goes on the wire, announcing `attachments` (one per element of
    /// `self.attachments`, in order).
    func message(announcing attachments: [AttachmentInfo]) -> WireMessage {
        switch self {
        case .plain(let message):
            message
        case .run(let id, let jobType, let envelope):
            .run(RunRequest(requestID: id, jobType: jobType, attachments: attachments, payload: envelope.payload))
        case .call(let id, let kind, let actor, let name, let envelope):
            .call(CallRequest(callID: id, kind: kind, actor: actor, name: name, attachments: attachments, payload: envelope.payload))
        case .result(let id, let envelope):
            .result(RunResult(requestID: id, outcome: .value(envelope.payload), attachments: attachments))
        case .callResult(let id, let envelope):
            .callResult(RunResult(requestID: id, outcome: .value(envelope.payload), attachments: attachments))
        }
    }

    /// What goes instead of a value whose shared memory could not be carried (`error`):
    /// the same answer as a failure saying so. Nil for requests, whose failure to go is
    /// the connection's.
    func undeliverable(because error: any Error) -> OutgoingMessage? {
        let report = FailureReport(
            reason: .resultEncodingFailed, errorType: String(reflecting: type(of: error)),
            message: "the result's shared memory could not be sent: \(error)", location: "daemon")
        switch self {
        case .result(let id, _): return Self.failure(id, report, isCall: false)
        case .callResult(let id, _): return Self.failure(id, report, isCall: true)
        case .plain, .run, .call: return nil
        }
    }
}

/// How a job or a call ended in the daemon: its value, or why there is none.
enum Completion: Sendable {
    case value(Envelope)
    case failure(FailureReport)

    /// The completion a daemon reports for a request it received (`result`).
    init(_ outcome: RunOutcome, attachments: [SharedStorage]) {
        switch outcome {
        case .value(let payload): self = .value(Envelope(payload: payload, attachments: attachments))
        case .failure(let report): self = .failure(report)
        }
    }
}
