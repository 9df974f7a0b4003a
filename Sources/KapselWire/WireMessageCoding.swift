import NIOCore

extension WireMessage {
    /// Appends this message as one complete frame (length prefix included) to `buffer`.
    public func writeFrame(into buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        writeBody(into: &buffer)
        let length = buffer.writerIndex - lengthIndex - 4
        precondition(length <= Int(UInt32.max), "a frame cannot exceed 4 GiB")
        buffer.setInteger(UInt32(length), at: lengthIndex)
    }

    /// This message as one complete frame in a new buffer.
    public func frame(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64 + payloadSize)
        writeFrame(into: &buffer)
        return buffer
    }

    /// This message as one frame in up to two buffers: the length prefix with every field
    /// but the payload, and the payload itself (a job's, a value's or a chunk's bytes)
    /// when it holds at least `copyLimit` bytes, written after the head as it is, not
    /// copied. Smaller payloads are copied into the head, which is then the whole frame.
    func frameParts(allocator: ByteBufferAllocator, copyLimit: Int) -> (head: ByteBuffer, payload: ByteBuffer?) {
        guard let payload = trailingPayload, payload.readableBytes >= copyLimit else { return (frame(allocator: allocator), nil) }
        var head = allocator.buffer(capacity: 64 + headSize)
        head.writeInteger(UInt32(0))
        writeBody(into: &head, includingPayload: false)
        let length = head.readableBytes - 4 + payload.readableBytes
        precondition(length <= Int(UInt32.max), "a frame cannot exceed 4 GiB")
        head.setInteger(UInt32(length), at: head.readerIndex)
        return (head, payload)
    }

    /// Appends this message as one frame to `buffer`, but for a payload of at least
    /// `copyLimit` bytes, which is returned instead: the frame goes on with it, uncopied.
    func appendFrameParts(to buffer: inout ByteBuffer, copyLimit: Int) -> ByteBuffer? {
        guard let payload = trailingPayload, payload.readableBytes >= copyLimit else {
            writeFrame(into: &buffer)
            return nil
        }
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        writeBody(into: &buffer, includingPayload: false)
        let length = buffer.writerIndex - lengthIndex - 4 + payload.readableBytes
        precondition(length <= Int(UInt32.max), "a frame cannot exceed 4 GiB")
        buffer.setInteger(UInt32(length), at: lengthIndex)
        return payload
    }

    /// The payload that ends the message, for the kinds whose last field is one.
    private var trailingPayload: ByteBuffer? {
        switch self {
        case .run(let request): request.payload
        case .call(let request): request.payload
        case .result(let result), .callResult(let result): if case .value(let payload) = result.outcome { payload } else { nil }
        case .attachmentChunk(let chunk): chunk.bytes
        default: nil
        }
    }

    /// Bytes of the fields before the payload, to size a head's buffer.
    private var headSize: Int {
        switch self {
        case .run(let request): request.jobType.utf8.count + request.attachments.count * 32
        case .call(let request): request.name.utf8.count + request.attachments.count * 32
        case .result(let result), .callResult(let result): result.attachments.count * 32
        default: 0
        }
    }

    private var payloadSize: Int {
        switch self {
        case .run(let request): request.payload.readableBytes + request.jobType.utf8.count + request.attachments.count * 16
        case .call(let request): request.payload.readableBytes + request.name.utf8.count + request.attachments.count * 16
        case .callResult(let result): result.outcome.payloadSize
        case .result(let result): result.outcome.payloadSize
        case .attachmentChunk(let chunk): chunk.bytes.readableBytes
        default: 0
        }
    }

    private func writeBody(into buffer: inout ByteBuffer, includingPayload: Bool = true) {
        switch self {
        case .challenge(let challenge):
            buffer.writeInteger(Kind.challenge.rawValue)
            buffer.writeBytes(Challenge.magic)
            buffer.writeInteger(challenge.protocolVersion)
            buffer.writeShortBytes(challenge.nonce)
        case .hello(let hello):
            buffer.writeInteger(Kind.hello.rawValue)
            buffer.writeInteger(hello.protocolVersion)
            buffer.writeInteger(hello.pid)
            buffer.writeLongString(hello.token)
            buffer.writeShortBytes(hello.nonce)
            buffer.writeShortBytes(hello.proof)
            buffer.writeLongString(hello.batchJob)
        case .welcome(let welcome):
            buffer.writeInteger(Kind.welcome.rawValue)
            buffer.writeInteger(welcome.daemonIndex)
            buffer.writeInteger(welcome.instance)
            buffer.writeShortBytes(welcome.proof)
        case .refused(let reason):
            buffer.writeInteger(Kind.refused.rawValue)
            buffer.writeLongString(reason)
        case .run(let request):
            buffer.writeInteger(Kind.run.rawValue)
            buffer.writeInteger(request.requestID)
            buffer.writeLongString(request.jobType)
            buffer.writeAttachments(request.attachments)
            if includingPayload { buffer.writeImmutableBuffer(request.payload) }
        case .cancel(let requestID):
            buffer.writeInteger(Kind.cancel.rawValue)
            buffer.writeInteger(requestID)
        case .result(let result):
            buffer.writeInteger(Kind.result.rawValue)
            buffer.writeResult(result, includingPayload: includingPayload)
        case .shutdown:
            buffer.writeInteger(Kind.shutdown.rawValue)
        case .released(let tokens):
            buffer.writeInteger(Kind.released.rawValue)
            buffer.writeIntegers(tokens)
        case .call(let request):
            buffer.writeInteger(Kind.call.rawValue)
            buffer.writeInteger(request.callID)
            buffer.writeInteger(request.kind.rawValue)
            buffer.writeActorID(request.actor)
            buffer.writeLongString(request.name)
            buffer.writeAttachments(request.attachments)
            if includingPayload { buffer.writeImmutableBuffer(request.payload) }
        case .callResult(let result):
            buffer.writeInteger(Kind.callResult.rawValue)
            buffer.writeResult(result, includingPayload: includingPayload)
        case .releaseActors(let releases):
            buffer.writeInteger(Kind.releaseActors.rawValue)
            buffer.writeInteger(UInt32(releases.count))
            for release in releases {
                buffer.writeActorID(release.actor)
                buffer.writeInteger(release.count)
            }
        case .actorCount(let count):
            buffer.writeInteger(Kind.actorCount.rawValue)
            buffer.writeInteger(count)
        case .heartbeat:
            buffer.writeInteger(Kind.heartbeat.rawValue)
        case .releasesWanted:
            buffer.writeInteger(Kind.releasesWanted.rawValue)
        case .forget(let names):
            buffer.writeInteger(Kind.forget.rawValue)
            buffer.writeIntegers(names)
        case .retiring(let exitCode):
            buffer.writeInteger(Kind.retiring.rawValue)
            buffer.writeInteger(exitCode)
        case .attachmentChunk(let chunk):
            buffer.writeInteger(Kind.attachmentChunk.rawValue)
            buffer.writeInteger(chunk.tag)
            buffer.writeInteger(chunk.index)
            buffer.writeInteger(chunk.byteCount)
            buffer.writeInteger(chunk.offset)
            if includingPayload { buffer.writeImmutableBuffer(chunk.bytes) }
        }
    }

    /// Parses the body of one frame (everything after the length prefix). The body must
    /// hold exactly one message; payloads are slices of `body`, not copies.
    public static func parse(frameBody body: ByteBuffer) throws(WireError) -> WireMessage {
        var body = body
        guard let rawKind = body.readInteger(as: UInt8.self) else { throw malformed("empty frame") }
        guard let kind = Kind(rawValue: rawKind) else { throw malformed("unknown message kind \(rawKind)") }
        let message: WireMessage
        switch kind {
        case .challenge:
            guard body.readBytes(length: Challenge.magic.count) == Challenge.magic else {
                throw malformed("the peer is not a Kapsel host (no KAPSEL magic in its first frame)")
            }
            let version = try body.read(UInt16.self, "challenge version")
            message = .challenge(Challenge(protocolVersion: version, nonce: try body.readShortBytes("challenge nonce")))
        case .hello:
            let version = try body.read(UInt16.self, "hello version")
            let pid = try body.read(Int32.self, "hello pid")
            let token = try body.readLongString("hello token")
            let nonce = try body.readShortBytes("hello nonce")
            let proof = try body.readShortBytes("hello proof")
            let batchJob = try body.readLongString("hello batch job")
            message = .hello(Hello(protocolVersion: version, pid: pid, token: token, nonce: nonce, proof: proof, batchJob: batchJob))
        case .welcome:
            let index = try body.read(UInt32.self, "welcome index")
            let instance = try body.read(UInt32.self, "welcome instance")
            message = .welcome(Welcome(daemonIndex: index, instance: instance, proof: try body.readShortBytes("welcome proof")))
        case .refused:
            message = .refused(try body.readLongString("refusal reason"))
        case .run:
            let requestID = try body.read(UInt64.self, "request id")
            let jobType = try body.readLongString("job type")
            let attachments = try body.readAttachments()
            message = .run(RunRequest(requestID: requestID, jobType: jobType, attachments: attachments, payload: body.readSlice(length: body.readableBytes)!))
        case .cancel:
            message = .cancel(requestID: try body.read(UInt64.self, "request id"))
        case .result:
            message = .result(try body.readResult())
        case .callResult:
            message = .callResult(try body.readResult())
        case .call:
            let callID = try body.read(UInt64.self, "call id")
            let rawKind = try body.read(UInt8.self, "call kind")
            guard let callKind = CallRequest.Kind(rawValue: rawKind) else { throw malformed("unknown call kind \(rawKind)") }
            let actor = try body.readActorID()
            let name = try body.readLongString("call target")
            let attachments = try body.readAttachments()
            message = .call(CallRequest(callID: callID, kind: callKind, actor: actor, name: name, attachments: attachments, payload: body.readSlice(length: body.readableBytes)!))
        case .releaseActors:
            let count = try body.read(UInt32.self, "release count")
            guard Int(count) <= body.readableBytes / 20 else {
                throw malformed("\(count) actor releases claimed but only \(body.readableBytes) bytes remain")
            }
            var releases: [ActorRelease] = []
            for _ in 0..<count {
                releases.append(ActorRelease(actor: try body.readActorID(), count: try body.read(UInt32.self, "release count")))
            }
            message = .releaseActors(releases)
        case .actorCount:
            message = .actorCount(try body.read(UInt32.self, "actor count"))
        case .shutdown:
            message = .shutdown
        case .heartbeat:
            message = .heartbeat
        case .releasesWanted:
            message = .releasesWanted
        case .retiring:
            message = .retiring(exitCode: try body.read(UInt8.self, "exit code"))
        case .attachmentChunk:
            let tag = try body.read(UInt64.self, "chunk tag")
            let index = try body.read(UInt32.self, "chunk index")
            let byteCount = try body.read(UInt64.self, "attachment size")
            let offset = try body.read(UInt64.self, "chunk offset")
            guard offset <= byteCount, UInt64(body.readableBytes) <= byteCount - offset else {
                throw malformed("a chunk of \(body.readableBytes) bytes at \(offset) overflows its attachment of \(byteCount) bytes")
            }
            message = .attachmentChunk(AttachmentChunk(tag: tag, index: index, byteCount: byteCount, offset: offset, bytes: body.readSlice(length: body.readableBytes)!))
        case .released:
            message = .released(tokens: try body.readIntegers("release token"))
        case .forget:
            message = .forget(names: try body.readIntegers("name"))
        }
        guard body.readableBytes == 0 else {
            throw malformed("\(body.readableBytes) unexpected bytes after a \(message.kindName) message")
        }
        return message
    }

    private static func malformed(_ text: String) -> WireError { WireError(.malformedFrame, text) }
}

extension ByteBuffer {
    fileprivate mutating func writeAttachments(_ attachments: [AttachmentInfo]) {
        precondition(attachments.count <= WireLimits.maxAttachments, "at most \(WireLimits.maxAttachments) attachments per message")
        writeInteger(UInt16(attachments.count))
        for attachment in attachments {
            writeInteger(attachment.byteCount)
            writeInteger(attachment.releaseToken)
            writeInteger(attachment.name)
            writeInteger(UInt8(attachment.isKept ? 1 : 0))
        }
    }

    /// A count, then that many 64-bit integers.
    fileprivate mutating func writeIntegers(_ values: [UInt64]) {
        writeInteger(UInt32(values.count))
        for value in values { writeInteger(value) }
    }

    /// What `writeIntegers` wrote; `what` names one of them in errors.
    fileprivate mutating func readIntegers(_ what: String) throws(WireError) -> [UInt64] {
        let count = try read(UInt32.self, "\(what) count")
        guard Int(count) <= readableBytes / 8 else {
            throw WireError(.malformedFrame, "\(count) \(what)s claimed but only \(readableBytes) bytes remain")
        }
        var values: [UInt64] = []
        for _ in 0..<count { values.append(try read(UInt64.self, what)) }
        return values
    }

    fileprivate mutating func readAttachments() throws(WireError) -> [AttachmentInfo] {
        let count = try read(UInt16.self, "attachment count")
        guard Int(count) <= WireLimits.maxAttachments else {
            throw WireError(.malformedFrame, "\(count) attachments exceed the limit of \(WireLimits.maxAttachments)")
        }
        var attachments: [AttachmentInfo] = []
        for _ in 0..<count {
            let byteCount = try read(UInt64.self, "attachment size")
            let releaseToken = try read(UInt64.self, "release token")
            let name = try read(UInt64.self, "attachment name")
            let kept = try read(UInt8.self, "attachment kept flag")
            guard kept <= 1, kept == 0 || name != 0 else {
                throw WireError(.malformedFrame, "an attachment said to be kept must be named (flag \(kept), name \(name))")
            }
            attachments.append(AttachmentInfo(byteCount: byteCount, releaseToken: releaseToken, name: name, isKept: kept == 1))
        }
        return attachments
    }

    fileprivate mutating func writeResult(_ result: RunResult, includingPayload: Bool) {
        writeInteger(result.requestID)
        writeAttachments(result.attachments)
        switch result.outcome {
        case .value(let payload):
            writeInteger(UInt8(0))
            if includingPayload { writeImmutableBuffer(payload) }
        case .failure(let report):
            writeInteger(report.reason.rawValue)
            writeLongString(report.errorType)
            writeLongString(report.message)
            writeLongString(report.location)
        }
    }

    fileprivate mutating func readResult() throws(WireError) -> RunResult {
        let requestID = try read(UInt64.self, "request id")
        let attachments = try readAttachments()
        let status = try read(UInt8.self, "result status")
        if status == 0 {
            return RunResult(requestID: requestID, outcome: .value(readSlice(length: readableBytes)!), attachments: attachments)
        }
        guard let reason = FailureReport.Reason(rawValue: status) else {
            throw WireError(.malformedFrame, "unknown result status \(status)")
        }
        let errorType = try readLongString("error type")
        let text = try readLongString("error message")
        let location = try readLongString("error location")
        return RunResult(requestID: requestID, outcome: .failure(FailureReport(reason: reason, errorType: errorType, message: text, location: location)), attachments: attachments)
    }

    fileprivate mutating func writeActorID(_ id: WireActorID) {
        writeInteger(id.creator)
        writeInteger(id.instance)
        writeInteger(id.serial)
    }

    fileprivate mutating func readActorID() throws(WireError) -> WireActorID {
        WireActorID(creator: try read(UInt32.self, "actor creator"), instance: try read(UInt32.self, "actor instance"), serial: try read(UInt64.self, "actor serial"))
    }

    fileprivate mutating func writeShortBytes(_ bytes: [UInt8]) {
        precondition(bytes.count <= Int(UInt8.max))
        writeInteger(UInt8(bytes.count))
        writeBytes(bytes)
    }

    fileprivate mutating func writeLongString(_ text: String) {
        let lengthIndex = writerIndex
        writeInteger(UInt32(0))
        let written = writeString(text)
        setInteger(UInt32(written), at: lengthIndex)
    }

    fileprivate mutating func read<I: FixedWidthInteger>(_ type: I.Type, _ what: String) throws(WireError) -> I {
        guard let value = readInteger(as: type) else { throw WireError(.malformedFrame, "frame ends inside the \(what)") }
        return value
    }

    fileprivate mutating func readShortBytes(_ what: String) throws(WireError) -> [UInt8] {
        let count = try read(UInt8.self, what)
        guard let bytes = readBytes(length: Int(count)) else { throw WireError(.malformedFrame, "frame ends inside the \(what)") }
        return bytes
    }

    /// Reads a 32-bit length and that many UTF-8 bytes; the length is checked against
    /// the bytes that remain in the frame before anything is read.
    fileprivate mutating func readLongString(_ what: String) throws(WireError) -> String {
        let count = try read(UInt32.self, what)
        guard Int(count) <= readableBytes else {
            throw WireError(.malformedFrame, "the \(what) claims \(count) bytes but only \(readableBytes) remain in the frame")
        }
        guard let text = readValidUTF8(length: Int(count)) else { throw WireError(.malformedFrame, "the \(what) is not UTF-8") }
        return text
    }
}

extension RunOutcome {
    /// Bytes the outcome adds to a frame, to size its buffer.
    var payloadSize: Int {
        switch self {
        case .value(let payload): payload.readableBytes
        case .failure(let report): report.message.utf8.count + report.location.utf8.count + report.errorType.utf8.count
        }
    }
}
