import KapselSharedMemory
import KapselWire

/// The host's end of one authenticated daemon connection.
protocol DaemonLink: AnyObject, Sendable {
    /// Queues `message` for the daemon; never blocks.
    func send(_ message: WireMessage)
    /// Sends a job with its shared-memory attachments (their descriptors first).
    func send(run: RunRequest, attachments: [SharedStorage])
    /// Closes the connection.
    func close()
    /// Where the daemon connected from, for status output.
    var peerDescription: String { get }
}
