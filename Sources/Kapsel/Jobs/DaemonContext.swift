import Synchronization

/// Where a job is running: available inside `run()` through `DaemonContext.current`.
public struct DaemonContext: Sendable {
    /// The daemon's index in its pool (stable across replacements of that daemon).
    public let daemonIndex: Int
    /// How many processes have held this index so far, this one included.
    public let instance: Int
    /// The daemon's process id.
    public let processID: Int32
    /// The daemon's actor system, which hosts its distributed actors.
    public let actorSystem: KapselActorSystem?

    /// The context of the job running in the current task; nil outside a daemon.
    @TaskLocal public static var current: DaemonContext?

    /// Creates a context.
    public init(daemonIndex: Int, instance: Int, processID: Int32, actorSystem: KapselActorSystem? = nil) {
        self.daemonIndex = daemonIndex
        self.instance = instance
        self.processID = processID
        self.actorSystem = actorSystem
    }
}

/// Values that live as long as the daemon process: what `everywhere` setup jobs
/// prepare (a loaded model, a connection, a cache) for the jobs that follow.
///
/// ```swift
/// struct LoadModel: Job {
///     var path: String
///     func run() async throws -> Bool {
///         DaemonStorage.shared.set("model", try Model(contentsOf: path))
///         return true
///     }
/// }
/// // later, in another job on the same daemon:
/// let model = DaemonStorage.shared.get("model", as: Model.self)
/// ```
public final class DaemonStorage: Sendable {
    /// The storage of this process.
    public static let shared = DaemonStorage()

    private let values = Mutex<[String: any Sendable]>([:])

    /// Creates an empty storage (tests; use `shared` otherwise).
    public init() {}

    /// Stores `value` under `key`, replacing what was there.
    public func set<Value: Sendable>(_ key: String, _ value: Value) {
        values.withLock { $0[key] = value }
    }

    /// The value stored under `key`, if it has type `Value`.
    public func get<Value: Sendable>(_ key: String, as type: Value.Type = Value.self) -> Value? {
        values.withLock { $0[key] as? Value }
    }

    /// The value stored under `key`, made by `make` and stored first when there is none
    /// of type `Value` (atomically: concurrent jobs get the same value). How jobs share
    /// one slot pool, say, without a setup job:
    ///
    /// ```swift
    /// let pool = try DaemonStorage.shared.value("frames") {
    ///     try SlotPool(slotByteCount: 800_000, slotCount: 8)
    /// }
    /// ```
    public func value<Value: Sendable>(_ key: String, orMake make: () throws -> Value) rethrows -> Value {
        try values.withLock { values in
            if let existing = values[key] as? Value { return existing }
            let made = try make()
            values[key] = made
            return made
        }
    }

    /// Removes and returns the value stored under `key`.
    @discardableResult
    public func remove(_ key: String) -> (any Sendable)? {
        values.withLock { $0.removeValue(forKey: key) }
    }
}
