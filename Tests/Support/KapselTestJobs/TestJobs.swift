@_exported import KapselStress
import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// Every job type the test daemon knows.
public enum TestJobs {
    public static let all: [any Job.Type] = [
        Echo.self, Add.self, Sleep.self, Spin.self, CooperativeSpin.self, Crash.self, CrashOnce.self, SlowCrashOnce.self,
        Fail.self, FailTyped.self, WhoAmI.self, StoreSetting.self, ReadSetting.self, CorruptConnection.self,
        WriteMarker.self, Shapes.self, ReadSettingSlowly.self, PreconditionFailure.self,
        MapStep.self, ReadEnvironment.self, BusyFor.self, PrintLine.self,
    ] + SharedMemoryJobs.all + TableJobs.all + StressJobs.all
}

/// The value of an environment variable in the daemon.
public struct ReadEnvironment: Job {
    public var name: String
    public init(_ name: String) { self.name = name }
    public func run() async throws -> String? { getenv(name).map { String(cString: $0) } }
}

/// Returns its value.
public struct Echo: Job {
    public var value: Int
    public init(_ value: Int) { self.value = value }
    public func run() async throws -> Int { value }
}

/// Adds two numbers.
public struct Add: Job {
    public var a: Int, b: Int
    public init(_ a: Int, _ b: Int) { self.a = a; self.b = b }
    public func run() async throws -> Int { a + b }
}

/// Sleeps (cancellable), then returns its value.
public struct Sleep: Job {
    public var milliseconds: Int
    public var value: Int
    public init(milliseconds: Int, value: Int = 0) { self.milliseconds = milliseconds; self.value = value }
    public func run() async throws -> Int {
        try await Task.sleep(for: .milliseconds(milliseconds))
        return value
    }
}

/// Spins the CPU for ever, ignoring cancellation.
public struct Spin: Job {
    /// Written on every turn, so no optimizer can prove the loop does nothing.
    nonisolated(unsafe) static var turns = 0

    public init() {}
    public func run() async throws -> Int {
        while true { Spin.turns &+= 1 }
    }
}

/// Computes for `milliseconds` without ever suspending, then returns true.
public struct BusyFor: Job {
    public var milliseconds: Int
    public init(milliseconds: Int) { self.milliseconds = milliseconds }
    public func run() async throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(milliseconds)
        while clock.now < deadline { Spin.turns &+= 1 }
        return true
    }
}

/// Spins until cancelled, then throws `CancellationError`.
public struct CooperativeSpin: Job {
    public init() {}
    public func run() async throws -> Int {
        while true {
            try Task.checkCancellation()
            await Task.yield()
        }
    }
}

/// Crashes its daemon in the given phase.
public struct Crash: Job {
    public var kind: CrashKind
    public var phase: CrashPhase

    public init(_ kind: CrashKind, in phase: CrashPhase) {
        self.kind = kind
        self.phase = phase
    }

    enum CodingKeys: String, CodingKey { case kind, phase }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = try container.decode(CrashKind.self, forKey: .kind)
        phase = try container.decode(CrashPhase.self, forKey: .phase)
        // The host only encodes; only a daemon decodes a job.
        if phase == .decodingJob { kind.perform() }
    }

    public func run() async throws -> CrashingOutput {
        if phase == .running { kind.perform() }
        return CrashingOutput(crashWhileEncoding: phase == .encodingResult ? kind : nil)
    }
}

/// An output that crashes its daemon while being encoded.
public struct CrashingOutput: Codable, Sendable {
    public var crashWhileEncoding: CrashKind?

    public func encode(to encoder: any Encoder) throws {
        if let crashWhileEncoding { crashWhileEncoding.perform() }
        var container = encoder.singleValueContainer()
        try container.encodeNil()
    }

    public init(crashWhileEncoding: CrashKind?) { self.crashWhileEncoding = crashWhileEncoding }
    public init(from decoder: any Decoder) throws { crashWhileEncoding = nil }
}

/// Crashes (SIGSEGV) the first time it runs, creating `markerPath`; returns `value` once the marker exists.
public struct CrashOnce: Job {
    public var markerPath: String
    public var value: Int
    public init(markerPath: String, value: Int) { self.markerPath = markerPath; self.value = value }
    public func run() async throws -> Int {
        if access(markerPath, F_OK) != 0 {
            let fd = open(markerPath, O_CREAT | O_WRONLY, 0o644)
            close(fd)
            CrashKind.segfault.perform()
        }
        return value
    }
}

/// Sleeps `milliseconds`, then crashes its daemon (SIGSEGV) the first time it runs, creating
/// `markerPath`; once the marker exists it sleeps as long and returns `value`.
public struct SlowCrashOnce: Job {
    public var markerPath: String
    public var milliseconds: Int
    public var value: Int
    public init(markerPath: String, milliseconds: Int, value: Int) {
        self.markerPath = markerPath
        self.milliseconds = milliseconds
        self.value = value
    }
    public func run() async throws -> Int {
        let firstRun = access(markerPath, F_OK) != 0
        if firstRun { close(open(markerPath, O_CREAT | O_WRONLY, 0o644)) }
        try await Task.sleep(for: .milliseconds(milliseconds))
        if firstRun { CrashKind.segfault.perform() }
        return value
    }
}

/// Throws a `JobFailure` with its message.
public struct Fail: Job {
    public var message: String
    public init(_ message: String) { self.message = message }
    public func run() async throws -> Int {
        throw JobFailure(message)
    }
}

/// An error type of the tests' own.
public enum TestError: Error, CustomStringConvertible {
    case invalidInput(String)
    public var description: String {
        switch self {
        case .invalidInput(let what): "invalid input: \(what)"
        }
    }
}

/// Throws `TestError.invalidInput`.
public struct FailTyped: Job {
    public var what: String
    public init(_ what: String) { self.what = what }
    public func run() async throws -> Int { throw TestError.invalidInput(what) }
}

/// Where the job ran.
public struct Whereabouts: Codable, Sendable, Hashable {
    public var daemonIndex: Int
    public var instance: Int
    public var pid: Int32
}

/// Reports the daemon it runs on.
public struct WhoAmI: Job {
    public init() {}
    public func run() async throws -> Whereabouts {
        let context = DaemonContext.current!
        return Whereabouts(daemonIndex: context.daemonIndex, instance: context.instance, pid: context.processID)
    }
}

/// Stores a setting in the daemon (for `everywhere`); returns the daemon's pid.
public struct StoreSetting: Job {
    public var key: String, value: String
    public init(key: String, value: String) { self.key = key; self.value = value }
    public func run() async throws -> Int32 {
        DaemonStorage.shared.set(key, value)
        return getpid()
    }
}

/// Reads a setting stored in the daemon.
public struct ReadSetting: Job {
    public var key: String
    public init(key: String) { self.key = key }
    public func run() async throws -> String? {
        DaemonStorage.shared.get(key, as: String.self)
    }
}

/// Writes garbage into every socket of its daemon, breaking the daemon's connection.
public struct CorruptConnection: Job {
    public init() {}
    public func run() async throws -> Int {
        var garbage: [UInt8] = [0, 0, 0, 5, 0xEE, 1, 2, 3, 4]
        for fd in Int32(3)..<Int32(64) {
            var info = stat()
            if fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK {
                _ = write(fd, &garbage, garbage.count)
            }
        }
        try await Task.sleep(for: .seconds(5))
        return 0
    }
}

/// Waits, then creates a marker file: proof that the job ran to its end.
public struct WriteMarker: Job {
    public var path: String
    public var delayMilliseconds: Int
    public init(path: String, delayMilliseconds: Int) { self.path = path; self.delayMilliseconds = delayMilliseconds }
    public func run() async throws -> Bool {
        try await Task.sleep(for: .milliseconds(delayMilliseconds))
        let fd = open(path, O_CREAT | O_WRONLY, 0o644)
        close(fd)
        return true
    }
}

/// A value of many Codable shapes, returned as it came.
public struct Shapes: Job {
    public var value: ShapeSample
    public init(_ value: ShapeSample) { self.value = value }
    public func run() async throws -> ShapeSample { value }
}

/// Nested structs, enums with payloads, optionals, arrays and dictionaries.
public struct ShapeSample: Codable, Sendable, Equatable {
    public enum Kind: Codable, Sendable, Equatable {
        case empty
        case named(String)
        case pair(Int, Double)
    }
    public struct Inner: Codable, Sendable, Equatable {
        public var flag: Bool
        public var numbers: [Double]
        public init(flag: Bool, numbers: [Double]) { self.flag = flag; self.numbers = numbers }
    }
    public var title: String
    public var count: Int64
    public var ratio: Float
    public var missing: Int?
    public var present: String?
    public var kinds: [Kind]
    public var inner: Inner
    public var table: [String: [Int]]
    public var byNumber: [Int: String]
    public var bytes: [UInt8]

    public init(title: String, count: Int64, ratio: Float, missing: Int?, present: String?, kinds: [Kind], inner: Inner, table: [String: [Int]], byNumber: [Int: String], bytes: [UInt8]) {
        self.title = title
        self.count = count
        self.ratio = ratio
        self.missing = missing
        self.present = present
        self.kinds = kinds
        self.inner = inner
        self.table = table
        self.byNumber = byNumber
        self.bytes = bytes
    }

    /// A sample with every field set.
    public static let sample = ShapeSample(
        title: "déjà vu ✓", count: -9_000_000_000, ratio: 0.25, missing: nil, present: "here",
        kinds: [.empty, .named("x"), .pair(-3, .infinity)],
        inner: Inner(flag: true, numbers: [1.5, -0.0, .greatestFiniteMagnitude]),
        table: ["a": [1, 2], "": []], byNumber: [7: "seven", -1: "minus one"], bytes: [0, 255, 128]
    )
}

/// What `ReadSettingSlowly` saw.
public struct SettingRead: Codable, Sendable {
    public var value: String?
    public var whereabouts: Whereabouts
    public var pair: (String?, Whereabouts) { (value, whereabouts) }
}

/// Waits, then reads a setting stored in the daemon and says where it ran.
public struct ReadSettingSlowly: Job {
    public var key: String
    public var milliseconds: Int
    public init(key: String, milliseconds: Int) { self.key = key; self.milliseconds = milliseconds }
    public func run() async throws -> SettingRead {
        try await Task.sleep(for: .milliseconds(milliseconds))
        let context = DaemonContext.current!
        return SettingRead(
            value: DaemonStorage.shared.get(key, as: String.self),
            whereabouts: Whereabouts(daemonIndex: context.daemonIndex, instance: context.instance, pid: context.processID)
        )
    }
}

/// Fails a precondition: the Swift runtime prints "Fatal error: ..." and traps.
public struct PreconditionFailure: Job {
    public var message: String
    public init(_ message: String) { self.message = message }
    public func run() async throws -> Int {
        preconditionFailure(message)
    }
}

/// Writes `line` to the daemon's standard error, then (with `crash`) dies by it.
public struct PrintLine: Job {
    public var line: String
    public var crash: CrashKind?
    public init(_ line: String, then crash: CrashKind? = nil) { self.line = line; self.crash = crash }
    public func run() async throws -> Int {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        crash?.perform()
        return bytes.count
    }
}
