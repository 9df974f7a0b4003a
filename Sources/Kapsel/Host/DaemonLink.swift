/// The host's end of one authenticated daemon connection.
///
/// What the dispatcher sends is queued while it holds its lock and written after it
/// releases the lock, so a daemon receives its messages (its welcome first) in the
/// order the dispatcher decided them, whichever threads decided them.
protocol DaemonLink: AnyObject, Sendable {
    /// Queues `message` for the daemon, with the shared memory its envelope carries;
    /// nothing is written until `flush`.
    func enqueue(_ message: OutgoingMessage)
    /// Queues the closing of the connection, after the messages queued before it.
    func enqueueClose()
    /// Writes what is queued, in order (attachments ahead of their message); never blocks
    /// longer than passing descriptors takes. Returns at once when another thread is
    /// writing this link's queue: that thread writes it.
    func flush()
    /// Where a daemon connected over TCP connects from (`IP:port`); nil over a Unix socket.
    var peerAddress: String? { get }
    /// The bytes of the host's pooled shared memory the daemon holds now.
    var lentSharedMemoryBytes: Int { get }
}
