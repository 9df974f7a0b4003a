// The README's tour, as a program that is built and run by the tests
// (Tests/KapselTests/ReadmeTests.swift checks every README snippet appears here).
import Distributed
import Kapsel
import KapselArrow
import KapselDashboard
import KapselPython
import KapselR
import KapselSequences
import KapselServiceLifecycle
import KapselSlurm
import Logging
import Prometheus
import ServiceLifecycle

// MARK: A job
struct Simulate: Job {
    var mean: Double, sd: Double, n: Int

    func run() async throws -> Double {
        guard sd > 0 else { throw JobFailure("sd must be positive, got \(sd)") }
        var sum = 0.0
        for _ in 0..<n { sum += mean + sd * Double.random(in: -1...1) }
        return sum / Double(n)
    }
}

struct LoadModel: Job {
    var name: String
    func run() async throws -> Bool {
        DaemonStorage.shared.set("model", name)
        return true
    }
}

struct Predict: Job {
    var x: Double
    func run() async throws -> String {
        let model = DaemonStorage.shared.get("model", as: String.self) ?? "none"
        return "\(model)(\(x))"
    }
}

struct Crash: Job {
    func run() async throws -> Int {
        UnsafeMutablePointer<Int>(bitPattern: 16)!.pointee = 1
        return 0
    }
}

struct Forever: Job {
    func run() async throws -> Int {
        while true { try await Task.sleep(for: .seconds(1)) }
    }
}

struct Scale: Job {
    var input: SharedArray<Double>
    var factor: Double

    func run() async throws -> SharedArray<Double> {
        try SharedArray(count: input.count) { output in          // written in place, in shared memory
            input.withUnsafeBufferPointer { values in
                for index in values.indices { output[index] = values[index] * factor }
            }
        }
    }
}

// MARK: Foreign types
final class Samples: @unchecked Sendable {                  // from a C library: not Codable
    let pointer: UnsafeMutablePointer<Double>, count: Int
    init(count: Int) { pointer = .allocate(capacity: count); pointer.initialize(repeating: 1, count: count); self.count = count }
    deinit { pointer.deallocate() }
}

enum SamplesCodec: TransportCodec {                         // how it travels: as shared memory
    static func represent(_ samples: Samples) throws -> SharedArray<Double> {
        try SharedArray(count: samples.count) { $0.baseAddress!.update(from: samples.pointer, count: samples.count) }
    }
    static func restore(_ shared: SharedArray<Double>) throws -> Samples {
        let samples = Samples(count: shared.count)
        shared.withUnsafeBufferPointer { samples.pointer.update(from: $0.baseAddress!, count: $0.count) }
        return samples
    }
}

struct Total: Job {
    @Transported<SamplesCodec> var samples: Samples          // in a job, its output, or an actor call
    func run() async throws -> Double { (0..<samples.count).reduce(0) { $0 + samples.pointer[$1] } }
}

distributed actor Counter: KapselActor {
    typealias ActorSystem = KapselActorSystem
    private var value: Int

    init(actorSystem: KapselActorSystem, configuration: Int) {
        self.actorSystem = actorSystem
        self.value = configuration
    }

    distributed func add(_ amount: Int) -> Int {
        value += amount
        return value
    }
}

// MARK: Bootstrap
Kapsel.bootstrap(jobs: [Simulate.self, LoadModel.self, Predict.self, Crash.self, Forever.self, Scale.self, Total.self], actors: [Counter.self, PythonSession.self, RSession.self])

// MARK: Submit and await
try await withDaemons(2) { daemons in
    let handle = daemons.submit(Simulate(mean: 2, sd: 5, n: 1_000_000))
    print(handle.isResolved)            // false while it runs
    let mean = try await handle.value   // or: await handle.result
    print(mean)
}

// MARK: Failures are values
try await withDaemons(2) { daemons in
    switch await daemons.submit(Crash()).result {
    case .success(let value):
        print("unexpected:", value)
    case .failure(let error) where error.code == .crashed:
        print("daemon died with", error.termination!)   // signal 11 (SIGSEGV)
    case .failure(let error):
        print(error)
    }

    let failed = await daemons.submit(Simulate(mean: 0, sd: -1, n: 10)).result
    if case .failure(let error) = failed {
        print(error.code, error.remoteErrorType!, error.message, error.location!)
    }
}

// MARK: Time-outs, cancellation, retries
try await withDaemons(2) { daemons in
    let slow = daemons.submit(Forever(), timeout: .milliseconds(200))
    print(await slow.result)                       // .failure(timed out)

    let long = daemons.submit(Forever())
    long.cancel()                                  // or cancel the task awaiting it
    print(await long.result)                       // .failure(cancelled)

    let retried = daemons.submit(Simulate(mean: 1, sd: 1, n: 10), retries: 2)
    print(try await retried.value)
}

// MARK: Setup on every daemon
try await withDaemons(2) { daemons in
    await daemons.everywhere(LoadModel(name: "gbm"))   // also runs on replacement daemons
    print(try await daemons.submit(Predict(x: 1)).value)  // "gbm(1.0)"
    print(daemons.status())
}

// MARK: Shared memory
try await withDaemons(2) { daemons in
    let input = try SharedArray<Double>(count: 10_000_000) { values in   // 80 MB, filled in place
        for index in values.indices { values[index] = Double(index) }
    }
    let scaled = try await daemons.submit(Scale(input: input, factor: 2)).value  // no copy either way
    print(scaled[9_999_999])                                                // 19999998.0
}

// MARK: Actors
try await withDaemons(2) { daemons in
    let counter = try await daemons.spawn(Counter.self, configuration: 10, on: .daemon(1))
    print(try await counter.add(5))          // 15: the state lives in daemon 1
    print(try await counter.add(1))          // 16
}

// MARK: Many items
try await withDaemons(2) { daemons in
    let means = await daemons.map(1...2_000, progress: true) { Simulate(mean: Double($0), sd: 1, n: 1_000) }
    print(means.count, try means[41].get() > 0)   // 2000 true: one Result per item, in input order

    let checked = await daemons.map([1.0, -1.0, 2.0], stopOnFirstError: true) { Simulate(mean: 0, sd: $0, n: 10) }
    if case .failure(let error) = checked[1] { print(error.message) }   // sd must be positive, got -1.0

    for await (index, result) in daemons.mapStream(0..<4, order: .completion, { Simulate(mean: Double($0), sd: 1, n: 100) }) {
        print(index, try result.get() > -10)   // as items finish; memory stays flat for any number of items
    }
}

// MARK: Lazy sequences
let grid = LazyIndexed(0..<6).map { Double($0) / 2 }     // nothing computed yet
let pairs = grid.zip(grid.map { $0 * $0 }).slice(2..<5)   // still nothing
print(pairs[1])                                           // (1.5, 2.25): computed now, only this one
print(grid.batched(size: 4).count, grid.cycled(toCount: 9).count)   // 2 9

try await withDaemons(2) { daemons in
    let jobs = LazyIndexed(count: 500) { Simulate(mean: Double($0), sd: 1, n: 10_000) }
    var total = 0.0
    for try await mean in jobs.prefetch(on: daemons, buffer: 16) {   // computed ahead, delivered in order
        total += mean
    }
    print(total > 100_000)                                             // true
}

// MARK: Daemons over the network
var network = DaemonOptions()
network.remote.listen = "tls+tcp://127.0.0.1:0"                 // a free port, TLS with a generated and pinned certificate
network.launch = .command("env OMP_NUM_THREADS=1 {command}")   // or "srun --mem 512 -n 1 {command}"
try await withDaemons(2, options: network) { daemons in
    print(daemons.url.hasPrefix("tls+tcp://127.0.0.1:"))  // true: the real port is in the URL
    print(try await daemons.submit(Simulate(mean: 3, sd: 1, n: 1_000)).value > 2)   // true
}

// MARK: Controllers and clusters
try await withDaemons(controller: .local(workers: 0...4, idleTime: .seconds(10))) { daemons in
    let means = await daemons.map(1...200) { Simulate(mean: Double($0), sd: 1, n: 10_000) }   // workers start as jobs wait
    print(means.count, daemons.status().launching + daemons.status().online <= 4)               // 200 true
}

var cluster = ControllerOptions(workers: 0...4, idleTime: .seconds(30), crashesMax: 5)
let slurm = SlurmLaunch(partition: "debug", cpusPerTask: 1, memoryPerCPU: "2G",
                        scriptLines: ["export OMP_NUM_THREADS=1"])   // e.g. "module load swift"
cluster.launch = .slurm(slurm)
if SlurmLaunch.clusterAnswers() {
try await withControllers(["local": .local(workers: 0...4), "cluster": cluster]) { group in
    let small = group.submit(Simulate(mean: 1, sd: 1, n: 10))          // the default profile: the first
    let big = try await group["cluster"].map(1...100) { Simulate(mean: Double($0), sd: 1, n: 1_000) }
    print(try await small.value < 2, big.count)                         // true 100
    print(group.status())       // per profile: workers online, idle, launching; jobs waiting; crashes; Slurm job ids
}
} else {
    print("no Slurm cluster answers here; a worker would be submitted as:")
    print(slurm.batchScript(program: ["/opt/app/worker"], jobName: "kapsel-example"))
}

// MARK: Python
try await withDaemons(1) { daemons in
    let runtime = try PythonRuntime(executable: "/usr/bin/python3")   // any CPython built with --enable-shared
    let python = try await daemons.spawn(PythonSession.self, configuration: .init(runtime: runtime))
    try await python.exec("import statistics")
    print(try await python.call("statistics.mean", [1, 2, 3, 4]))     // double(2.5)
    do {
        _ = try await python.eval("1 / 0")
    } catch let error as JobError {
        print(PythonError(error)!.type)                                  // ZeroDivisionError, with its traceback
    }
    do {
        try await python.exec("import ctypes; ctypes.string_at(0)")     // a segfault inside Python...
    } catch let error as JobError {
        print(error.code)                                                // ...is a crashed daemon, not a crashed host
    }
}

// MARK: R
if (try? RRuntime()) == nil {
    print("R is not installed (no R_HOME, no R on the PATH): the R part of the tour is skipped")
} else {
try await withDaemons(1) { daemons in
    let runtime = try RRuntime()                                        // R_HOME, or `R RHOME`: any R built as a shared library
    let r = try await daemons.rSession(RSession.Configuration(runtime: runtime))
    let brms = r.module("brms")                                         // calls read like the R functions
    let epilepsy = try await r.eval("brms::epilepsy").table!            // a data.frame comes back as a SharedTable
    let fit = try await brms.brm(RFormula("count ~ zAge + (1 | patient)"), data: epilepsy,
                                 family: .call("poisson"), chains: 2, iter: 300, refresh: 0)   // an RObject handle
    let draws = try await r.call("as.matrix", fit).tensor()             // the posterior draws, in shared memory
    print(draws.shape[0], draws.layout)                                 // 300 columnMajor
    print(try await r.call("summary", fit).string().contains("Family: poisson"))   // true
    do {
        _ = try await r.eval("stop('boom')")
    } catch let error as JobError {
        print(RError(error)!.message)                                   // boom (with R's call and traceback)
    }
}
}

// MARK: Arrow
let table = try SharedTable([.primitive("price", [1.5, nil, 3.0]), .utf8("name", ["a", "b", nil])])
var array = ArrowArray(), schema = ArrowSchema()
table.exportArrow(array: &array, schema: &schema)              // hand these to PyArrow, DuckDB, ...
let batch = try ImportedArrowArray.take(array: &array, schema: &schema)   // what a consumer does
print(try batch.column(named: "price")!.value(0, as: Double.self)!)       // 1.5, read where it lies

// MARK: Foreign types, sent
try await withDaemons(1) { daemons in
    print(try await daemons.submit(Total(samples: Samples(count: 1000))).value)   // 1000.0
}

// MARK: Logging
var logged = DaemonOptions()
logged.logger = Logger(label: "my-app.kapsel")           // any swift-log backend; nil (the default) logs nothing
logged.logger?.logLevel = .warning                       // launches are .debug, daemon output .info, crashes .warning
try await withDaemons(1, options: logged) { daemons in
    _ = await daemons.submit(Crash()).result             // logs "daemon crashed", kapsel.pid=..., kapsel.termination=signal 11 (SIGSEGV)
}

// MARK: Metrics
let registry = PrometheusCollectorRegistry()
var metered = DaemonOptions()
metered.metricsFactory = PrometheusMetricsFactory(registry: registry)   // or MetricsSystem.bootstrap(...) for every pool
metered.name = "simulations"                                            // the `pool` label
try await withDaemons(2, options: metered) { daemons in
    for n in 1...3 { _ = try await daemons.submit(Simulate(mean: 1, sd: 1, n: n)).value }
}
let exposition = registry.emitToString()                                // serve it at /metrics
print(exposition.contains(#"kapsel_jobs_succeeded_total{pool="simulations"} 3"#))   // true

// MARK: Lifecycle
let pool = DaemonPoolService(2, shutdownGrace: .seconds(30))           // run() starts the daemons
let services = ServiceGroup(services: [pool], gracefulShutdownSignals: [.sigterm], logger: Logger(label: "my-app"))
let serving = Task { try await services.run() }
print(try await pool.daemons.submit(Predict(x: 2)).value)              // none(2.0)
await services.triggerGracefulShutdown()           // as SIGTERM does: new jobs are refused, submitted ones finish
try await serving.value

// MARK: In the host
var debugging = DaemonOptions()
debugging.launch = .inProcess        // the jobs and actors of Kapsel.bootstrap, run in this process: breakpoints work
try await withDaemons(2, options: debugging) { daemons in
    print(try await daemons.submit(Predict(x: 3)).value)   // none(3.0), as a daemon process answers
}

// MARK: Dashboard
try await withDaemons(2) { daemons in
    let dashboard = try await Dashboard.start(daemons)       // 127.0.0.1, a free port; DashboardSettings for more
    print(dashboard.url.hasPrefix("http://127.0.0.1:"))      // true: open it in a browser
    _ = await daemons.map(1...500) { Simulate(mean: Double($0), sd: 1, n: 1_000) }
    await dashboard.stop()
}

// MARK: Options
var options = DaemonOptions()
options.dispatch = .roundRobin          // no host queue: each job goes to the next daemon in turn
options.cancellationGrace = .milliseconds(100)
let daemons = try await Daemons(4, options: options)
let results = (1...8).map { daemons.submit(Simulate(mean: Double($0), sd: 1, n: 1000)) }
for result in results { print(try await result.value) }
await daemons.stop()
