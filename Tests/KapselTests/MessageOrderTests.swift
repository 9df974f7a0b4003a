import Dispatch
import KapselSharedMemory
import KapselWire
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// A daemon receives its messages in the order the dispatcher decided them, whichever
/// threads decided them: a welcome is never overtaken by the job a submitter hands
/// the daemon the moment it is online, a job never by its cancellation.
@Suite("Message order on a daemon link")
struct MessageOrderTests {
    @Test func anOutboxWritesInQueueOrderWhicheverThreadsFlushIt() async {
        let outbox = OrderedOutbox<Int>()
        let order = Mutex(0)
        let written = Mutex<[Int]>([])
        await onThreads(4, iterations: 5_000) {
            order.withLock { count in
                count += 1
                outbox.enqueue(count)
            }
            outbox.flush { item in written.withLock { $0.append(item) } }
        }
        let writtenInOrder = written.withLock { $0 == Array(1...20_000) }
        #expect(writtenInOrder)
    }

    @Test func whatAWriteQueuesIsWrittenAfterIt() {
        let outbox = OrderedOutbox<Int>()
        var written: [Int] = []
        outbox.enqueue(1)
        outbox.flush { item in
            written.append(item)
            if item == 1 {
                outbox.enqueue(2)
                outbox.flush { _ in Issue.record("a second writer while the first writes") }
                outbox.enqueue(3)
            }
        }
        #expect(written == [1, 2, 3])
    }

    /// Messages queued under one lock by several threads, and by the connection's own
    /// event loop, reach the peer in the order they were queued: through the
    /// connection's writer with either carrier (descriptors beside the connection, or
    /// streamed on it), written by the event loop or (`direct`, a local connection's way)
    /// by the sending threads themselves, the socket filling up and draining as it goes.
    @Test(arguments: [false, true], [false, true])
    func aLinkDeliversMessagesInTheOrderTheyWereQueued(streamed: Bool, direct: Bool) async throws {
        var sockets: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sockets) == 0)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ClientBootstrap(group: group).withConnectedSocket(sockets[0]).get()
        let link = try await channel.eventLoop.submit { ConnectionWriter(channel: channel, direct: direct) }.get()
        var descriptorEnd: DescriptorChannel?
        if !streamed {
            let (descriptors, otherEnd) = try DescriptorChannel.pair()
            close(otherEnd)
            descriptorEnd = descriptors
        }
        link.install(makeCarrier(writer: link, descriptors: descriptorEnd, limits: WireLimits()))
        try await channel.pipeline.addHandler(WritabilityForwarder(writer: link))
        let count = 20_000
        let peer = sockets[1]
        var limit = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        async let received = onThread { try readCancellations(count, from: peer) }

        let order = Mutex<UInt64>(0)
        let send: @Sendable () -> Void = {
            order.withLock { last in
                last += 1
                link.enqueue(.plain(.cancel(requestID: last)))
            }
            link.flush()
        }
        await onThreads(4, iterations: count / 8) {
            send()
            // Every other one from the connection's own loop, where writes are immediate.
            channel.eventLoop.execute(send)
        }
        let ids = try await received
        let firstOutOfOrder = ids.indices.first { ids[$0] != UInt64($0 + 1) }
        #expect(ids.count == count)
        #expect(firstOutOfOrder == nil, "message \(firstOutOfOrder.map { ids[$0] } ?? 0) arrived in place \((firstOutOfOrder ?? 0) + 1)")
        try await channel.close()
        close(peer)
        try await group.shutdownGracefully()
    }

    /// Runs blocking `body` on a thread outside the tasks' pool.
    private func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result(catching: body)) }
        }
    }

    /// Runs `body` `iterations` times on each of `threads` threads, all at once.
    private func onThreads(_ threads: Int, iterations: Int, _ body: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for _ in 0..<threads {
                group.enter()
                DispatchQueue.global().async {
                    for _ in 0..<iterations { body() }
                    group.leave()
                }
            }
            group.notify(queue: .global()) { done.resume() }
        }
    }
}

/// Tells a writer when its connection takes more data again, as the connection
/// handlers of host and daemon do.
private final class WritabilityForwarder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let writer: ConnectionWriter

    init(writer: ConnectionWriter) {
        self.writer = writer
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writer.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }
}

/// Reads frames from `socket` until `count` messages came; returns their request ids.
private func readCancellations(_ count: Int, from socket: Int32) throws -> [UInt64] {
    var decoder = FrameDecoder(limits: WireLimits(), handshakeFrames: 0)
    var buffer = ByteBuffer()
    var ids: [UInt64] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while ids.count < count {
        let got = read(socket, &chunk, chunk.count)
        guard got > 0 else { throw TestFailure("the connection ended after \(ids.count) messages") }
        buffer.writeBytes(chunk[0..<got])
        while let message = try decoder.nextMessage(from: &buffer) {
            guard case .cancel(let id) = message else { throw TestFailure("unexpected \(message.kindName) message") }
            ids.append(id)
        }
        buffer.discardReadBytes()
    }
    return ids
}

private struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
