import NIOCore

/// Every message of the Kapsel protocol between a host and its daemons.
///
/// A frame on the wire is a 4-byte big-endian length, then one kind byte and the
/// message's fields; the length counts the kind byte and the fields.
///
/// A connection opens with a mutual handshake: the host sends `challenge`, the
/// daemon answers `hello` with a proof of the shared secret, and the host replies
/// `welcome` with its own proof, or `refused` with the reason.
public enum WireMessage: Sendable, Equatable {
    /// Host → daemon, first frame: protocol version and a fresh random nonce.
    case challenge(Challenge)
    /// Daemon → host: who the daemon is and its proof of the secret.
    case hello(Hello)
    /// Host → daemon: accepted; the daemon's place and the host's proof.
    case welcome(Welcome)
    /// Either way: the connection is refused, and why. The sender closes it.
    case refused(String)
    /// Host → daemon: run a job.
    case run(RunRequest)
    /// Host → daemon: stop the job with this request id (cooperatively).
    case cancel(requestID: UInt64)
    /// Daemon → host: how a job ended.
    case result(RunResult)
    /// Host → daemon: finish and exit.
    case shutdown
    /// Either way: the sender has dropped its last view of these attachments, which the
    /// receiver lent from a pool (the "drop token" that gives the slot back).
    case released(tokens: [UInt64])
    /// Host → daemon: create a distributed actor, or call one.
    case call(CallRequest)
    /// Daemon → host: how a call (or a creation) ended; the same shape as a job's result.
    case callResult(RunResult)
    /// Host → daemon: the host dropped its references to these actors.
    case releaseActors([ActorRelease])
    /// Daemon → host: how many distributed actors live in the daemon now.
    case actorCount(UInt32)
    /// Either way, on connections with heartbeats: "still here".
    case heartbeat
    /// Daemon → host: the daemon retires (it reached a limit of its lifetime) and exits
    /// with `exitCode` once the host, having sent it nothing more, says `shutdown`.
    case retiring(exitCode: UInt8)
    /// Either way, on connections without a descriptor channel (over TCP): bytes of an
    /// attachment of the message tagged `tag`, sent ahead of that message.
    case attachmentChunk(AttachmentChunk)
    /// Either way: the sender waits for a slot of a pool whose slots the receiver holds.
    /// The receiver sends the release tokens it has ready at once, or the next one as soon
    /// as it drops a slot (tokens otherwise wait to travel with its next message).
    case releasesWanted
    /// Either way: pool slots the sender lent under these names are gone (their pool was
    /// freed); the receiver drops what it kept of them (see `AttachmentInfo.name`).
    case forget(names: [UInt64])

    /// The protocol version this build speaks.
    public static let protocolVersion: UInt16 = 2

    enum Kind: UInt8 {
        case challenge = 1, hello, welcome, refused, run, cancel, result, shutdown, released, call, callResult, releaseActors, actorCount, heartbeat,
            attachmentChunk, retiring, releasesWanted, forget
    }

    /// The name of the message's kind, for error messages.
    public var kindName: String {
        switch self {
        case .challenge: "challenge"
        case .hello: "hello"
        case .welcome: "welcome"
        case .refused: "refused"
        case .run: "run"
        case .cancel: "cancel"
        case .result: "result"
        case .shutdown: "shutdown"
        case .released: "released"
        case .call: "call"
        case .callResult: "call result"
        case .releaseActors: "release actors"
        case .actorCount: "actor count"
        case .heartbeat: "heartbeat"
        case .attachmentChunk: "attachment chunk"
        case .retiring: "retiring"
        case .releasesWanted: "releases wanted"
        case .forget: "forget"
        }
    }
}

/// The host's opening message.
public struct Challenge: Sendable, Equatable {
    /// Bytes that mark a Kapsel host, so a daemon that dialled the wrong service says so.
    public static let magic: [UInt8] = Array("KAPSEL".utf8)
    /// The protocol version the host speaks.
    public var protocolVersion: UInt16
    /// A fresh random nonce the daemon must sign.
    public var nonce: [UInt8]

    /// Creates a challenge.
    public init(protocolVersion: UInt16 = WireMessage.protocolVersion, nonce: [UInt8]) {
        self.protocolVersion = protocolVersion
        self.nonce = nonce
    }
}

/// The daemon's introduction.
public struct Hello: Sendable, Equatable {
    /// The protocol version the daemon speaks.
    public var protocolVersion: UInt16
    /// The daemon's process id (as the daemon sees it).
    public var pid: Int32
    /// The launch token the host gave this daemon, or empty for a daemon started elsewhere.
    public var token: String
    /// A fresh random nonce the host must sign in `Welcome`.
    public var nonce: [UInt8]
    /// HMAC of the host's nonce, this nonce and the token under the shared secret.
    public var proof: [UInt8]
    /// The resource manager's job the daemon runs in (`slurm 1234`), or empty: shown in
    /// the host's status, not part of the proof.
    public var batchJob: String

    /// Creates a hello.
    public init(protocolVersion: UInt16 = WireMessage.protocolVersion, pid: Int32, token: String, nonce: [UInt8], proof: [UInt8], batchJob: String = "") {
        self.protocolVersion = protocolVersion
        self.pid = pid
        self.token = token
        self.nonce = nonce
        self.proof = proof
        self.batchJob = batchJob
    }
}

/// The host's acceptance.
public struct Welcome: Sendable, Equatable {
    /// The daemon's index in its pool.
    public var daemonIndex: UInt32
    /// How many daemons have held this index so far, this one included.
    public var instance: UInt32
    /// HMAC of the daemon's nonce and the host's nonce under the shared secret.
    public var proof: [UInt8]

    /// Creates a welcome.
    public init(daemonIndex: UInt32, instance: UInt32, proof: [UInt8]) {
        self.daemonIndex = daemonIndex
        self.instance = instance
        self.proof = proof
    }
}

/// A job to run.
public struct RunRequest: Sendable, Equatable {
    /// Identifies the job in `cancel` and `result`.
    public var requestID: UInt64
    /// The registered name of the job's type.
    public var jobType: String
    /// The shared-memory attachments that travel with the job, in order.
    public var attachments: [AttachmentInfo]
    /// The job value in the compact format.
    public var payload: ByteBuffer

    /// Creates a request.
    public init(requestID: UInt64, jobType: String, attachments: [AttachmentInfo] = [], payload: ByteBuffer) {
        self.requestID = requestID
        self.jobType = jobType
        self.attachments = attachments
        self.payload = payload
    }
}

/// A piece of an attachment streamed on the connection: `bytes` go at `offset` of
/// attachment `index` (of `byteCount` bytes in all) of the message tagged `tag`.
/// Pieces of one attachment arrive in order, and before the message.
public struct AttachmentChunk: Sendable, Equatable {
    /// The tag of the message the attachment belongs to.
    public var tag: UInt64
    /// Which of the message's attachments.
    public var index: UInt32
    /// The attachment's whole size.
    public var byteCount: UInt64
    /// Where `bytes` go in it.
    public var offset: UInt64
    /// The bytes (a slice of the frame, not a copy).
    public var bytes: ByteBuffer

    /// A chunk.
    public init(tag: UInt64, index: UInt32, byteCount: UInt64, offset: UInt64, bytes: ByteBuffer) {
        self.tag = tag
        self.index = index
        self.byteCount = byteCount
        self.offset = offset
        self.bytes = bytes
    }
}

/// What the receiver of a message is told about one of its attachments; the memory
/// itself travels out of band (a descriptor on the same machine) or in chunks ahead of
/// the message (over TCP).
public struct AttachmentInfo: Sendable, Hashable {
    /// The attachment's size in bytes; the receiver checks the memory it gets is at least this big.
    public var byteCount: UInt64
    /// Nonzero when the sender lent the memory from a pool: the receiver sends
    /// `released` with this token once it has dropped its last view.
    public var releaseToken: UInt64
    /// Nonzero for a pool slot lent over a descriptor channel: the sender's name for it
    /// on this connection. The receiver keeps the memory under this name, so that once
    /// the sender knows it does (a loan that brought it came back), later loans name it
    /// instead of sending it again — until the sender says `forget`.
    public var name: UInt64
    /// Whether the memory does not come with this message because the receiver keeps it
    /// under `name` already.
    public var isKept: Bool

    /// Creates attachment information.
    public init(byteCount: UInt64, releaseToken: UInt64 = 0, name: UInt64 = 0, isKept: Bool = false) {
        precondition(!isKept || name != 0, "kept memory is named")
        self.byteCount = byteCount
        self.releaseToken = releaseToken
        self.name = name
        self.isKept = isKept
    }
}

/// The identity of a distributed actor on the wire: who created it and a serial number.
public struct WireActorID: Sendable, Hashable {
    /// 0 for an actor the host named; otherwise the creating daemon's index + 1.
    public var creator: UInt32
    /// The creating daemon's instance (0 for the host).
    public var instance: UInt32
    /// Unique among the creator's actors.
    public var serial: UInt64

    /// Creates an identity.
    public init(creator: UInt32, instance: UInt32, serial: UInt64) {
        self.creator = creator
        self.instance = instance
        self.serial = serial
    }
}

/// A call to a distributed actor in a daemon, or the creation of one.
public struct CallRequest: Sendable, Equatable {
    /// What to do.
    public enum Kind: UInt8, Sendable {
        /// Call the distributed method `name` (its mangled identifier) on the actor.
        case invoke = 1
        /// Create an actor of the registered type `name` with this id.
        case create
    }

    /// Identifies the call in `cancel` and `callResult`.
    public var callID: UInt64
    /// What to do.
    public var kind: Kind
    /// The actor.
    public var actor: WireActorID
    /// The call target's identifier, or the actor type's registered name.
    public var name: String
    /// The shared-memory attachments of the arguments, in order.
    public var attachments: [AttachmentInfo]
    /// The arguments (a compact array), or the creation's configuration.
    public var payload: ByteBuffer

    /// Creates a request.
    public init(callID: UInt64, kind: Kind, actor: WireActorID, name: String, attachments: [AttachmentInfo] = [], payload: ByteBuffer) {
        self.callID = callID
        self.kind = kind
        self.actor = actor
        self.name = name
        self.attachments = attachments
        self.payload = payload
    }
}

/// The host dropped `count` references it had received to an actor.
public struct ActorRelease: Sendable, Hashable {
    /// The actor.
    public var actor: WireActorID
    /// How many references (creations and results that carried it) the host drops.
    public var count: UInt32

    /// Creates a release.
    public init(actor: WireActorID, count: UInt32) {
        self.actor = actor
        self.count = count
    }
}

/// How a job ended in the daemon.
public struct RunResult: Sendable, Equatable {
    /// The request this answers.
    public var requestID: UInt64
    /// The value or the failure.
    public var outcome: RunOutcome
    /// The shared-memory attachments of the value, in order.
    public var attachments: [AttachmentInfo]

    /// Creates a result.
    public init(requestID: UInt64, outcome: RunOutcome, attachments: [AttachmentInfo] = []) {
        self.requestID = requestID
        self.outcome = outcome
        self.attachments = attachments
    }
}

/// The end of a job as the daemon reports it.
public enum RunOutcome: Sendable, Equatable {
    /// The job's output in the compact format.
    case value(ByteBuffer)
    /// The job did not produce a value.
    case failure(FailureReport)
}

/// A job that ended without a value, as the daemon saw it.
public struct FailureReport: Sendable, Equatable {
    /// Why the job produced no value.
    public enum Reason: UInt8, Sendable {
        /// `run()` threw.
        case thrown = 1
        /// The daemon has no job registered under the requested name.
        case unknownJobType
        /// The job's bytes did not decode as its type.
        case jobDecodingFailed
        /// The job's output could not be encoded.
        case resultEncodingFailed
        /// The job stopped because it was cancelled.
        case cancelled
    }

    /// Why the job produced no value.
    public var reason: Reason
    /// The Swift type of the error, e.g. `MyApp.ValidationError`.
    public var errorType: String
    /// The error's description.
    public var message: String
    /// Where the error was thrown, as precisely as the daemon knows it.
    public var location: String

    /// Creates a report.
    public init(reason: Reason, errorType: String, message: String, location: String) {
        self.reason = reason
        self.errorType = errorType
        self.message = message
        self.location = location
    }
}
