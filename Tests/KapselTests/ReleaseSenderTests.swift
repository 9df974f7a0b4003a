import KapselWire
import NIOCore
import NIOEmbedded
import Testing
@testable import Kapsel

/// Release tokens go back to the lending peer with this side's next message, or at
/// once (together) when the peer says it waits for a slot, or on their own after a
/// moment when no message comes.
@Suite("Release tokens")
struct ReleaseSenderTests {
    @Test func droppedTokensWaitForTheNextMessage() throws {
        let (channel, sender) = senderHolding(7, 8)
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "no message of their own")
        #expect(sender.takePending() == [7, 8])
        #expect(sender.takePending() == [], "taken tokens are no longer pending")
        _ = try channel.finish()
    }

    @Test func aPeerWaitingForASlotGetsTheTokensAtOnce() throws {
        let (channel, sender) = senderHolding(7, 8)
        sender.peerWantsReleases()
        sender.add(9)
        channel.embeddedEventLoop.run()
        #expect(try released(channel) == [7, 8, 9], "what waits goes in one message")
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)

        // Asked with nothing pending: the next token dropped goes at once, alone.
        sender.peerWantsReleases()
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        sender.add(10)
        channel.embeddedEventLoop.run()
        #expect(try released(channel) == [10])

        // The wish is answered: later tokens wait again.
        sender.add(11)
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(sender.takePending() == [11])
        _ = try channel.finish()
    }

    @Test func tokensNoMessageTakesGoOnTheirOwnAfterTheLinger() throws {
        let (channel, sender) = senderHolding(7, 8)
        channel.embeddedEventLoop.advanceTime(by: ReleaseSender.linger - .microseconds(1))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "a message may still take them")
        channel.embeddedEventLoop.advanceTime(by: .microseconds(1))
        #expect(try released(channel) == [7, 8], "the host sent nothing more: they go alone, together")

        // Taken by a message before the linger ends: nothing goes twice.
        sender.add(9)
        #expect(sender.takePending() == [9])
        channel.embeddedEventLoop.advanceTime(by: ReleaseSender.linger)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        // And the next drop lingers again.
        sender.add(10)
        channel.embeddedEventLoop.advanceTime(by: ReleaseSender.linger)
        #expect(try released(channel) == [10])
        _ = try channel.finish()
    }

    /// A sender on an embedded connection, with `tokens` dropped.
    private func senderHolding(_ tokens: UInt64...) -> (EmbeddedChannel, ReleaseSender) {
        let channel = EmbeddedChannel()
        let sender = ReleaseSender(writer: ConnectionWriter(channel: channel))
        for token in tokens { sender.add(token) }
        return (channel, sender)
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
