import Distributed
import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// Every distributed actor type the test daemon hosts.
public enum TestActors {
    public static let all: [any KapselActor.Type] = [Counter.self, Calculator.self] + StressJobs.actors
}

/// A stateful actor: a counter with a log, and methods that fail, crash or wait.
public distributed actor Counter: KapselActor {
    public typealias ActorSystem = KapselActorSystem

    private var value: Int
    private var log: [Int] = []

    public init(actorSystem: KapselActorSystem, configuration: Int) {
        self.actorSystem = actorSystem
        self.value = configuration
    }

    public distributed func add(_ amount: Int) -> Int {
        value += amount
        return value
    }

    public distributed func current() -> Int { value }

    public distributed func whereAmI() -> Whereabouts {
        let pid = getpid()
        let context = DaemonContext.current
        return Whereabouts(daemonIndex: context?.daemonIndex ?? -1, instance: context?.instance ?? 0, pid: pid)
    }

    public distributed func echo(_ sample: ShapeSample) -> ShapeSample { sample }

    public distributed func identity<Value: Codable & Sendable>(_ value: Value) -> Value { value }

    /// The sum of a C buffer's values, and the buffer scaled by `factor`.
    public distributed func sumAndScale(_ buffer: Transported<CBufferCodec>, by factor: Double) -> SumAndScaled {
        let values = buffer.wrappedValue
        let sum = (0..<values.count).reduce(0) { $0 + values.pointer[$1] }
        return SumAndScaled(sum: sum, scaled: Transported(CBuffer(count: values.count) { values.pointer[$0] * factor }, using: CBufferCodec.self))
    }

    public distributed func sum(_ values: SharedArray<Double>) -> Double {
        values.withUnsafeBufferPointer { $0.reduce(0, +) }
    }

    public distributed func scaled(_ values: SharedArray<Double>, by factor: Double) throws -> SharedArray<Double> {
        try SharedArray(count: values.count) { output in
            values.withUnsafeBufferPointer { input in
                for index in input.indices { output[index] = input[index] * factor }
            }
        }
    }

    public distributed func fail(_ message: String) throws -> Int {
        throw JobFailure(message)
    }

    public distributed func failTyped(_ what: String) throws -> Int {
        throw TestError.invalidInput(what)
    }

    public distributed func crash() -> Int {
        CrashKind.segfault.perform()
    }

    /// Waits, then appends `entry` to the log and returns the log.
    public distributed func slowAppend(_ entry: Int, milliseconds: Int) async throws -> [Int] {
        try await Task.sleep(for: .milliseconds(milliseconds))
        log.append(entry)
        return log
    }

    public distributed func sleep(milliseconds: Int) async throws {
        try await Task.sleep(for: .milliseconds(milliseconds))
    }

    /// Waits (at most 5 s) until `key` is set in the daemon's storage.
    public distributed func waitFor(_ key: String) async throws -> Bool {
        for _ in 0..<500 {
            if DaemonStorage.shared.get(key, as: Bool.self) == true { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    public distributed func set(_ key: String) {
        DaemonStorage.shared.set(key, true)
    }

    /// A new counter created in this daemon, returned as a reference.
    public distributed func makeChild(start: Int) -> Counter {
        Counter(actorSystem: actorSystem, configuration: start)
    }

    /// This counter's value plus `other`'s (an actor in the same daemon).
    public distributed func addFrom(_ other: Counter) async throws -> Int {
        value + (try await other.current())
    }
}

/// A stateless actor for pooling.
public distributed actor Calculator: KapselActor {
    public typealias ActorSystem = KapselActorSystem

    public init(actorSystem: KapselActorSystem, configuration: NoConfiguration) {
        self.actorSystem = actorSystem
    }

    public distributed func square(_ x: Int) -> Int { x * x }

    public distributed func whereAmI(after milliseconds: Int) async throws -> Whereabouts {
        try await Task.sleep(for: .milliseconds(milliseconds))
        let context = DaemonContext.current
        return Whereabouts(daemonIndex: context?.daemonIndex ?? -1, instance: context?.instance ?? 0, pid: getpid())
    }
}

/// What `Counter.sumAndScale` returns: a C buffer inside a `Codable` result.
public struct SumAndScaled: Codable, Sendable {
    public var sum: Double
    public var scaled: Transported<CBufferCodec>
}
