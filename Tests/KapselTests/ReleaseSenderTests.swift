import KapselWire
import NIOCore
import NIOEmbedded
import Testing
@testable import Kapsel

/// Release tokens go back to the lending peer together: slots dropped one after
/// another before the event loop runs leave in one message.
@Suite("Release tokens")
struct ReleaseSenderTests {
    @Test func tokensDroppedBeforeTheLoopRunsLeaveInOneMessage() throws {
        let channel = EmbeddedChannel()
        let sender = ReleaseSender(channel: channel)
        sender.add(7)
        sender.add(8)
        sender.add(9)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing is written before the loop runs")
        channel.embeddedEventLoop.run()
        #expect(try released(channel) == [7, 8, 9])
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "one message for the three tokens")

        sender.add(10)
        channel.embeddedEventLoop.run()
        #expect(try released(channel) == [10], "a token dropped later goes in a message of its own")
        _ = try channel.finish()
    }

    private func released(_ channel: EmbeddedChannel) throws -> [UInt64]? {
        guard var frame = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        let length = frame.readInteger(as: UInt32.self)
        let body = try #require(length.flatMap { frame.readSlice(length: Int($0)) }, "a whole frame")
        guard case .released(let tokens) = try WireMessage.parse(frameBody: body) else {
            Issue.record("expected a released message")
            return nil
        }
        return tokens
    }
}
