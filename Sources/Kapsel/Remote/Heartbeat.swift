import NIOCore

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

/// Heartbeats on one connection, confined to its event loop: `beat` sends one every
/// `interval`, and `onSilence` runs once nothing has arrived for `timeout`.
final class HeartbeatMonitor {
    private let settings: HeartbeatSettings
    private var lastHeard = NIODeadline.now()
    private var task: RepeatedTask?

    init(_ settings: HeartbeatSettings) {
        self.settings = settings
    }

    /// Starts beating on `loop`, the connection's.
    func start(on loop: any EventLoop, beat: @escaping () -> Void, onSilence: @escaping () -> Void) {
        lastHeard = .now()
        let bound = NIOLoopBound((monitor: self, beat: beat, onSilence: onSilence), eventLoop: loop)
        let interval = TimeAmount(settings.interval)
        task = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            let (monitor, beat, onSilence) = bound.value
            if NIODeadline.now() - monitor.lastHeard > TimeAmount(monitor.settings.timeout) {
                task.cancel()
                onSilence()
            } else {
                beat()
            }
        }
    }

    /// Something arrived from the peer.
    func heard() {
        lastHeard = .now()
    }

    /// Stops beating (the connection closed).
    func stop() {
        task?.cancel()
        task = nil
    }
}

extension Duration {
    /// This duration in whole milliseconds.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
