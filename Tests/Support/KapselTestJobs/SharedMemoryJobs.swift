import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// Shared-memory jobs of the tests.
enum SharedMemoryJobs {
    static let all: [any Job.Type] = [
        SumAndDouble.self, DaemonMemory.self, HoldShared.self, EchoTensor.self, MakeTensor.self,
        EchoDoubles.self, CreatePool.self, FillSlot.self, FillSlotWhenFree.self, CrashOnceWith.self, PoolFrame.self, ScaleCBuffer.self,
    ]
}

/// Sums its input and returns a new array of twice each value, computed in place in
/// shared memory; reports how much the daemon's private memory grew meanwhile.
public struct SumAndDouble: Job {
    public var input: SharedArray<Double>
    public init(input: SharedArray<Double>) { self.input = input }

    public struct Output: Codable, Sendable {
        public var sum: Double
        public var doubled: SharedArray<Double>
        public var anonymousGrowthKB: Int
    }

    public func run() async throws -> Output {
        let before = MemoryUsage.current()
        let sum = input.withUnsafeBufferPointer { values in
            var total = 0.0
            for value in values { total += value }
            return total
        }
        let doubled = try SharedArray<Double>(count: input.count) { output in
            input.withUnsafeBufferPointer { values in
                for index in values.indices { output[index] = 2 * values[index] }
            }
        }
        let after = MemoryUsage.current()
        return Output(sum: sum, doubled: doubled, anonymousGrowthKB: after.residentAnonymousKB - before.residentAnonymousKB)
    }
}

/// The daemon's memory figures.
public struct DaemonMemory: Job {
    public init() {}
    public func run() async throws -> MemoryUsage { MemoryUsage.current() }
}

/// Reads every page of its arrays (so the daemon maps them for real), then holds them.
public struct HoldShared: Job {
    public var arrays: [SharedArray<Double>]
    public var milliseconds: Int
    public init(arrays: [SharedArray<Double>], milliseconds: Int) { self.arrays = arrays; self.milliseconds = milliseconds }
    public func run() async throws -> Double {
        var total = 0.0
        for array in arrays {
            array.withUnsafeBufferPointer { values in
                for index in stride(from: 0, to: values.count, by: 512) { total += values[index] }
            }
        }
        try await Task.sleep(for: .milliseconds(milliseconds))
        return total
    }
}

/// What a daemon saw of a tensor, and the tensor back.
public struct TensorReport: Codable, Sendable {
    public var tensor: SharedTensor<Double>
    public var strides: [Int]
    public var layout: SharedTensor<Double>.Layout
    public var element: Double
}

/// Returns its tensor, with the strides, layout and element [1, 2] the daemon saw.
public struct EchoTensor: Job {
    public var tensor: SharedTensor<Double>
    public init(_ tensor: SharedTensor<Double>) { self.tensor = tensor }
    public func run() async throws -> TensorReport {
        TensorReport(tensor: tensor, strides: tensor.strides, layout: tensor.layout, element: tensor[1, 2])
    }
}

/// A tensor made in the daemon: element [r, c] = r * 100 + c.
public struct MakeTensor: Job {
    public var rows: Int, columns: Int, layout: SharedTensor<Double>.Layout
    public init(rows: Int, columns: Int, layout: SharedTensor<Double>.Layout) { self.rows = rows; self.columns = columns; self.layout = layout }
    public func run() async throws -> SharedTensor<Double> {
        var tensor = try SharedTensor<Double>(shape: [rows, columns], layout: layout)
        for row in 0..<rows { for column in 0..<columns { tensor[row, column] = Double(row * 100 + column) } }
        return tensor
    }
}

/// Adds one to every value of a plain array.
public struct EchoDoubles: Job {
    public var values: [Double]
    public init(_ values: [Double]) { self.values = values }
    public func run() async throws -> [Double] { values.map { $0 + 1 } }
}

/// Sets up a pool of `slots` slots of `count` doubles in the daemon.
public struct CreatePool: Job {
    public var slots: Int, count: Int
    public init(slots: Int, count: Int) { self.slots = slots; self.count = count }
    public func run() async throws -> Bool {
        DaemonStorage.shared.set("pool", try SlotPool(slotByteCount: count * 8, slotCount: slots))
        DaemonStorage.shared.set("pool.count", count)
        return true
    }

    /// The pool `CreatePool` made in this daemon, and its slots' element count.
    static func made() throws -> (pool: SlotPool, count: Int) {
        guard let pool = DaemonStorage.shared.get("pool", as: SlotPool.self), let count = DaemonStorage.shared.get("pool.count", as: Int.self) else {
            throw JobFailure("no pool: run CreatePool everywhere first")
        }
        return (pool, count)
    }
}

/// Fills a slot of the daemon's pool with `value`, or fails if every slot is in use.
public struct FillSlot: Job {
    public var value: Double
    public init(_ value: Double) { self.value = value }
    public func run() async throws -> SharedArray<Double> {
        let (pool, count) = try CreatePool.made()
        // Only one view of the slot may exist while writing, or the write copies it out of the pool.
        guard let slot = pool.tryAcquire() else { throw JobFailure("pool exhausted") }
        var array = try SharedArray<Double>(buffer: consume slot, count: count)
        array.withUnsafeMutableBufferPointer { $0.initialize(repeating: value) }
        return array
    }
}

/// Fills a slot of the daemon's pool with `value`, waiting for one to be free.
public struct FillSlotWhenFree: Job {
    public var value: Double
    public init(_ value: Double) { self.value = value }
    public func run() async throws -> SharedArray<Double> {
        let (pool, count) = try CreatePool.made()
        var array = try await pool.acquireArray(of: Double.self, count: count)
        array.withUnsafeMutableBufferPointer { $0.initialize(repeating: value) }
        return array
    }
}

/// Crashes (SIGSEGV) the first time, creating `markerPath`; then returns the sum of `data`.
public struct CrashOnceWith: Job {
    public var data: SharedArray<Double>
    public var markerPath: String
    public init(data: SharedArray<Double>, markerPath: String) { self.data = data; self.markerPath = markerPath }
    public func run() async throws -> Double {
        if access(markerPath, F_OK) != 0 {
            close(open(markerPath, O_CREAT | O_WRONLY, 0o644))
            CrashKind.segfault.perform()
        }
        return data.reduce(0, +)
    }
}

/// Returns `count` copies of `value` in a slot of the daemon's pool "frames" (made on
/// first use with `slots` slots); waits up to 10 s for a free slot, then fails.
public struct PoolFrame: Job {
    public var value: Double, count: Int, slots: Int
    public init(_ value: Double, count: Int, slots: Int) { self.value = value; self.count = count; self.slots = slots }
    public func run() async throws -> SharedArray<Double> {
        let pool = try DaemonStorage.shared.value("frames") {
            try SlotPool(slotByteCount: count * MemoryLayout<Double>.stride, slotCount: slots)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while true {
            if let slot = pool.tryAcquire() {
                var frame = try SharedArray<Double>(buffer: consume slot, count: count)
                frame.withUnsafeMutableBufferPointer { $0.initialize(repeating: value) }
                return frame
            }
            guard clock.now < deadline else { throw JobFailure("no slot came back within 10 s") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// Doubles in memory from `malloc`, freed with the buffer: a type that is not `Codable`,
/// as a C library's would be.
public final class CBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Double>
    public let count: Int

    public init(count: Int, _ fill: (Int) -> Double) {
        self.count = count
        pointer = malloc(count * MemoryLayout<Double>.stride)!.bindMemory(to: Double.self, capacity: count)
        for index in 0..<count { pointer[index] = fill(index) }
    }

    deinit { free(pointer) }

    public var values: [Double] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Carries a `CBuffer` as shared memory: copied once into a `SharedArray` where it is
/// sent, and into a new C buffer where it arrives.
public enum CBufferCodec: TransportCodec {
    public static func represent(_ buffer: CBuffer) throws -> SharedArray<Double> {
        try SharedArray(count: buffer.count) { output in
            for index in 0..<buffer.count { output[index] = buffer.pointer[index] }
        }
    }

    public static func restore(_ shared: SharedArray<Double>) throws -> CBuffer {
        shared.withUnsafeBufferPointer { values in CBuffer(count: values.count) { values[$0] } }
    }
}

/// Scales a C buffer in the daemon and returns a new one.
public struct ScaleCBuffer: Job {
    @Transported<CBufferCodec> public var buffer: CBuffer
    public var factor: Double

    public init(_ buffer: CBuffer, by factor: Double) {
        self.buffer = buffer
        self.factor = factor
    }

    public func run() async throws -> Transported<CBufferCodec> {
        Transported(CBuffer(count: buffer.count) { buffer.pointer[$0] * factor }, using: CBufferCodec.self)
    }
}
