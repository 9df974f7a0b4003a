import KapselSharedMemory
import KapselWire

/// The host's end of one authenticated daemon connection.
protocol DaemonLink: AnyObject, Sendable {
    /// Queues `message` for the daemon with its shared-memory attachments (their
    /// descriptors go first); never blocks longer than passing the descriptors takes.
    func send(_ message: WireMessage, attachments: [SharedStorage])
    /// Closes the connection.
    func close()
    /// Where a daemon connected over TCP connects from (`IP:port`); nil over a Unix socket.
    var peerAddress: String? { get }
}

extension DaemonLink {
    /// Queues `message`, which carries no attachments.
    func send(_ message: WireMessage) {
        send(message, attachments: [])
    }
}
