import KapselSharedMemory
import KapselWire

/// What the host does with an authenticated daemon's connection, whoever reads it: NIO's
/// `HostConnectionHandler` (daemons over TCP and TLS) or a `LocalDaemonConnection` (local
/// daemons, read by a thread of their own).
extension Dispatcher {
    /// Asks the dispatcher to admit a daemon that proved it knows the secret. On
    /// acceptance its connection gets the carrier for its shared memory (descriptors when
    /// the host launched it here, streamed bytes otherwise) and the dispatcher's welcome,
    /// with `hostProof`; the welcome and the daemon's first work are written before this returns.
    func admit(_ hello: Hello, hostProof: [UInt8], writer: ConnectionWriter, limits: WireLimits) -> DispatcherState.Admission {
        var admission = DispatcherState.Admission.refused("not admitted")
        perform { state in
            let (decision, actions) = state.daemonAuthenticated(token: hello.token, pid: hello.pid, batchJob: hello.batchJob.isEmpty ? nil : hello.batchJob, connect: { descriptors in
                writer.install(makeCarrier(writer: writer, descriptors: descriptors, limits: limits))
                return writer
            }, welcome: { index, instance in
                .welcome(Welcome(daemonIndex: UInt32(index), instance: UInt32(instance), proof: hostProof))
            })
            admission = decision
            return actions
        }
        return admission
    }

    /// Hands an admitted daemon's messages, read together, to the dispatcher — in one
    /// event (`DispatcherState.answered`) — or to the connection's `carrier` when they
    /// concern shared memory only. Throws when a message's shared memory cannot be
    /// received (a protocol violation); what came before it is delivered.
    func deliver(_ messages: some Collection<WireMessage>, slot: Int, instance: Int, carrier: any AttachmentCarrier) throws {
        var answers: [DaemonAnswer] = []
        defer {
            if !answers.isEmpty {
                let now = ContinuousClock.now
                perform { $0.answered(answers, slot: slot, instance: instance, at: now) }
            }
        }
        for message in messages {
            do {
                try take(message, into: &answers, carrier: carrier)
            } catch {
                throw UndeliverableMessage(kind: message.kindName, reason: error)
            }
        }
    }

    /// Adds `message` to `answers` when it is one, or hands it to `carrier`.
    private func take(_ message: WireMessage, into answers: inout [DaemonAnswer], carrier: any AttachmentCarrier) throws {
        switch message {
        case .result(let result):
            let attachments = try carrier.receiveAttachments(result.attachments, tag: result.requestID)
            answers.append(.job(requestID: result.requestID, Completion(result.outcome, attachments: attachments)))
        case .callResult(let result):
            let attachments = try carrier.receiveAttachments(result.attachments, tag: result.requestID)
            answers.append(.call(requestID: result.requestID, Completion(result.outcome, attachments: attachments)))
        case .actorCount(let count):
            answers.append(.actorCount(Int(count)))
        case .retiring(let exitCode):
            answers.append(.retiring(exitCode: exitCode))
        case .attachmentChunk(let chunk):
            try carrier.received(chunk)
        case .released(let tokens):
            carrier.peerReleased(tokens)
        case .releasesWanted:
            carrier.peerWantsReleases()
        case .forget(let names):
            carrier.peerForgot(names)
        default:
            break
        }
    }
}

/// An admitted daemon's message whose shared memory could not be received: a protocol
/// violation, which ends its connection.
struct UndeliverableMessage: Error, CustomStringConvertible {
    let kind: String
    let reason: any Error

    var description: String {
        "cannot receive the shared memory of a \(kind) message: \(reason)"
    }
}
