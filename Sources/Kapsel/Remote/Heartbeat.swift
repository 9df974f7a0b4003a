import NIOCore
import Synchronization

/// How often heartbeats go on a connection, and how long silence may last before the
/// peer counts as gone (a killed machine, a cut link, a half-open TCP connection).
public struct HeartbeatSettings: Sendable, Hashable {
    /// Time between heartbeats.
    public var interval: Duration
    /// Silence after which the peer counts as gone.
    public var timeout: Duration

    /// Settings; `timeout` should be several `interval`s.
    public init(interval: Duration = .seconds(1), timeout: Duration = .seconds(5)) {
        self.interval = interval
        self.timeout = timeout
    }

    /// `interval:timeout` in milliseconds, as a daemon's environment carries them.
    var environmentValue: String {
        "\(interval.wholeMilliseconds):\(timeout.wholeMilliseconds)"
    }

    /// Parses `environmentValue`.
    init?(environmentValue: String) {
        let parts = environmentValue.split(separator: ":").compactMap { Int64($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0 else { return nil }
        self.init(interval: .milliseconds(parts[0]), timeout: .milliseconds(parts[1]))
    }
}

/// Heartbeats on one connection: `beat` sends one every `interval` from the connection's
/// loop, and `onSilence` runs once nothing has arrived for `timeout`. Whatever reads the
/// connection says when something arrived (`heard`), from its own thread.
final class HeartbeatMonitor: Sendable {
    private let settings: HeartbeatSettings
    /// When something last arrived, in `NIODeadline` nanoseconds.
    private let lastHeard = Atomic<Int64>(NIODeadline.now().uptimeNanoseconds.clampedToInt64)
    private let task = Mutex<RepeatedTask?>(nil)

    init(_ settings: HeartbeatSettings) {
        self.settings = settings
    }

    /// Starts beating on `loop`.
    func start(on loop: any EventLoop, beat: @escaping @Sendable () -> Void, onSilence: @escaping @Sendable () -> Void) {
        heard()
        let interval = TimeAmount(settings.interval)
        let timeout = TimeAmount(settings.timeout).nanoseconds
        let repeated = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] task in
            if NIODeadline.now().uptimeNanoseconds.clampedToInt64 - lastHeard.load(ordering: .relaxed) > timeout {
                task.cancel()
                onSilence()
            } else {
                beat()
            }
        }
        self.task.withLock { $0 = repeated }
    }

    /// Something arrived from the peer.
    func heard() {
        lastHeard.store(NIODeadline.now().uptimeNanoseconds.clampedToInt64, ordering: .relaxed)
    }

    /// Stops beating (the connection closed).
    func stop() {
        task.withLock { $0.take() }?.cancel()
    }
}

extension UInt64 {
    /// The value as an `Int64`, at most `Int64.max`.
    fileprivate var clampedToInt64: Int64 { Int64(clamping: self) }
}

extension Duration {
    /// This duration in whole milliseconds.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// This duration in whole microseconds.
    var wholeMicroseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
