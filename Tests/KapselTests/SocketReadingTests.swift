import Dispatch
import Foundation
import KapselWire
import NIOCore
import Synchronization
import Testing
@testable import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// The threads that read local connections: a `SocketReader` (the host's side) and a
/// `ReaderRelay` (the daemon's) hand over every message in order, report how the
/// connection ended exactly once — closed, or the malformed frame that ended it — and the
/// relay's second thread reads on while the first is held by a long message.
@Suite("Reading local connections on threads")
struct SocketReadingTests {
    /// Messages written in pieces of every size reach the reader whole and in order, with
    /// and without busy polling, and the peer's close ends it without an error.
    @Test(arguments: [Duration.zero, .microseconds(100)])
    func aReaderHandsOverEveryMessageInOrderThenTheClose(busyPoll: Duration) async throws {
        let (local, peer) = try socketPair()
        let reader = SocketReader(descriptor: local, limits: WireLimits(), handshakeFrames: 0, busyPoll: busyPoll)
        let log = ReadLog()
        reader.start(received: { messages in log.received(messages) }, ended: { ending in log.ended(ending) })

        let count: UInt64 = 5_000
        writeCancellations(1...count, to: peer)
        close(peer)

        let outcome = await log.outcome()
        #expect(outcome.ids == Array(1...count))
        #expect(outcome.endings == 1)
        #expect(outcome.error == nil)
    }

    /// A frame of many megabytes, arriving over hundreds of reads between small messages,
    /// is handed over whole and in its place.
    @Test func aLargeFrameReadInManyPiecesArrivesWholeAndInOrder() async throws {
        let (local, peer) = try socketPair()
        let reader = SocketReader(descriptor: local, limits: WireLimits(), handshakeFrames: 0, busyPoll: .zero)
        let log = ReadLog()
        reader.start(received: { messages in log.received(messages) }, ended: { ending in log.ended(ending) })

        let tokens = (0..<UInt64(2_000_000)).map { $0 &* 2_654_435_761 }
        var buffer = ByteBuffer()
        let encoder = FrameEncoder()
        _ = encoder.append(.cancel(requestID: 1), to: &buffer)
        _ = encoder.append(.released(tokens: tokens), to: &buffer)
        _ = encoder.append(.cancel(requestID: 2), to: &buffer)
        let bytes = Array(buffer.readableBytesView)
        await onThread {
            writeInPieces(bytes, to: peer) { _ in 65_536 }
            close(peer)
        }

        let outcome = await log.outcome()
        #expect(outcome.ids == [1, 2])
        #expect(outcome.released == [tokens])
        #expect(outcome.order == ["cancel", "released", "cancel"])
        #expect(outcome.error == nil)
    }

    /// A length beyond the limit ends the reader with the frame's error; what came before
    /// it was handed over.
    @Test func anOversizedFrameEndsTheReaderWithItsError() async throws {
        let (local, peer) = try socketPair()
        let reader = SocketReader(descriptor: local, limits: WireLimits(maxFrameLength: 1 << 10), handshakeFrames: 0, busyPoll: .zero)
        let log = ReadLog()
        reader.start(received: { messages in log.received(messages) }, ended: { ending in log.ended(ending) })

        writeCancellations(1...3, to: peer)
        var header = UInt32(1 << 20).bigEndian
        _ = write(peer, &header, 4)

        let outcome = await log.outcome()
        #expect(outcome.ids == [1, 2, 3])
        #expect(outcome.endings == 1)
        #expect((outcome.error as? WireError)?.code == .oversizedFrame)
        close(peer)
    }

    /// `shutDown` from another thread ends a reader blocked waiting for bytes.
    @Test func shuttingDownEndsAWaitingReader() async throws {
        let (local, peer) = try socketPair()
        let reader = SocketReader(descriptor: local, limits: WireLimits(), handshakeFrames: 0, busyPoll: .zero)
        let log = ReadLog()
        reader.start(received: { messages in log.received(messages) }, ended: { ending in log.ended(ending) })
        try await Task.sleep(for: .milliseconds(20))
        reader.shutDown()

        let outcome = await log.outcome()
        #expect(outcome.ids.isEmpty)
        #expect(outcome.endings == 1)
        #expect(outcome.error == nil)
        close(peer)
    }

    /// While the first message holds the thread that read it (a job that runs long), the
    /// relay's other thread takes the reading over and hands the next messages over — a
    /// cancellation reaches the daemon while the job it cancels still runs. Once released,
    /// the first thread finds the rest handed over, in order, and the end is reported once.
    @Test func theRelaysSecondThreadReadsWhileTheFirstIsHeld() async throws {
        let (local, peer) = try socketPair()
        let relay = ReaderRelay(descriptor: local, limits: WireLimits(), handshakeFrames: 0, busyPoll: .microseconds(100))
        let log = ReadLog()
        let held = DispatchSemaphore(value: 0)
        let secondArrived = DispatchSemaphore(value: 0)
        let threads = Mutex<[UInt64: pthread_t]>([:])
        relay.start(received: { message in
            guard case .cancel(let id) = message else { return }
            threads.withLock { $0[id] = pthread_self() }
            log.received([message])
            if id == 1 { held.wait() }
            if id == 2 { secondArrived.signal() }
        }, ended: { ending in log.ended(ending) })

        writeCancellations(1...2, to: peer)
        let handedOverWhileHeld = await onThread { secondArrived.wait(timeout: .now() + 10) == .success }
        held.signal()
        writeCancellations(3...100, to: peer)
        close(peer)

        let outcome = await log.outcome()
        #expect(handedOverWhileHeld, "the second message waited for the first to be done")
        #expect(outcome.ids == Array(1...100))
        #expect(outcome.endings == 1)
        #expect(outcome.error == nil)
        let (first, second) = threads.withLock { ($0[1], $0[2]) }
        if let first, let second { #expect(pthread_equal(first, second) == 0) }
    }

    /// A relay ends, with the error, on a malformed frame, after handing over what came
    /// before it.
    @Test func aRelayReportsAMalformedFrameOnce() async throws {
        let (local, peer) = try socketPair()
        let relay = ReaderRelay(descriptor: local, limits: WireLimits(maxFrameLength: 1 << 10), handshakeFrames: 0, busyPoll: .zero)
        let log = ReadLog()
        relay.start(received: { message in log.received([message]) }, ended: { ending in log.ended(ending) })
        writeCancellations(1...10, to: peer)
        var header = UInt32(1 << 20).bigEndian
        _ = write(peer, &header, 4)

        let outcome = await log.outcome()
        #expect(outcome.ids == Array(1...10))
        #expect(outcome.endings == 1)
        #expect((outcome.error as? WireError)?.code == .oversizedFrame)
        close(peer)
    }
}

/// What a reader handed over and how it ended.
private final class ReadLog: Sendable {
    struct Outcome {
        var ids: [UInt64] = []
        var released: [[UInt64]] = []
        var order: [String] = []
        var endings = 0
        var error: (any Error)?
    }

    private let state = Mutex(Outcome())
    private let done = DispatchSemaphore(value: 0)

    func received(_ messages: [WireMessage]) {
        state.withLock { state in
            for message in messages {
                state.order.append(message.kindName)
                switch message {
                case .cancel(let id): state.ids.append(id)
                case .released(let tokens): state.released.append(tokens)
                default: break
                }
            }
        }
    }

    func ended(_ ending: SocketReader.Ending) {
        state.withLock { state in
            state.endings += 1
            state.error = ending
        }
        done.signal()
    }

    /// The outcome once the reader ended (after a grace for a second, wrong, ending).
    func outcome() async -> Outcome {
        let ended = await onThread { [done] in done.wait(timeout: .now() + 30) == .success }
        #expect(ended, "the reader never ended")
        try? await Task.sleep(for: .milliseconds(50))
        return state.withLock { $0 }
    }
}

/// A connected pair of Unix stream sockets.
private func socketPair() throws -> (Int32, Int32) {
    var sockets: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sockets) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
    return (sockets[0], sockets[1])
}

/// Writes a cancellation frame for each id to `socket`, in pieces of varying size (a
/// frame split across reads, several frames in one).
private func writeCancellations(_ ids: ClosedRange<UInt64>, to socket: Int32) {
    let encoder = FrameEncoder()
    var buffer = ByteBuffer()
    for id in ids { _ = encoder.append(.cancel(requestID: id), to: &buffer) }
    writeInPieces(Array(buffer.readableBytesView), to: socket) { piece in piece % 97 + 7 }
}

/// Writes `bytes` to `socket` in pieces: the first one byte long, each next as long as
/// `next` makes of the one before; every piece written whole.
private func writeInPieces(_ bytes: [UInt8], to socket: Int32, next: (Int) -> Int) {
    var offset = 0
    var piece = 1
    while offset < bytes.count {
        let end = min(bytes.count, offset + piece)
        bytes[offset..<end].withUnsafeBytes { chunk in
            var sent = 0
            while sent < chunk.count { sent += max(0, write(socket, chunk.baseAddress! + sent, chunk.count - sent)) }
        }
        offset = end
        piece = next(piece)
    }
}

/// Runs blocking `body` on a thread outside the tasks' pool.
private func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: body()) }
    }
}
