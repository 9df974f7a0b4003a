import KapselWire
import NIOCore
import Synchronization

/// Sends the peer the release tokens of its pool slots as this side drops them, several
/// in one message: a token dropped while others wait to be sent goes with them, so a
/// consumer dropping items one after another wakes the connection's event loop once,
/// not once per item.
final class ReleaseSender: Sendable {
    private let channel: any Channel
    private let pending = Mutex<[UInt64]>([])

    init(channel: any Channel) {
        self.channel = channel
    }

    /// Queues `token`; the first token queued schedules the message that takes all.
    func add(_ token: UInt64) {
        let first = pending.withLock { pending in
            pending.append(token)
            return pending.count == 1
        }
        guard first else { return }
        channel.eventLoop.execute { [self] in
            let tokens = pending.withLock { pending in
                defer { pending = [] }
                return pending
            }
            channel.writeAndFlush(WireMessage.released(tokens: tokens).frame(allocator: channel.allocator), promise: nil)
        }
    }
}
