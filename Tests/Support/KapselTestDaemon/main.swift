// The daemon executable the tests launch (the test runner cannot re-launch itself).
//
// With no Kapsel environment it can also act as a small host, for tests that need a
// host process they can kill:
//   KapselTestDaemon host N     start N daemons (this executable), print their pids, wait
//   KapselTestDaemon idle-flood PORT N  open N idle connections to 127.0.0.1:PORT; print how
//                                   many were established and closed, and the seconds it took
//   KapselTestDaemon under-fire LOCAL TCP [SSH-PORT SSH-KEY]
//                               keep local, TCP and SSH daemons busy until killed (HostUnderFire)
//   KapselTestDaemon no-bootstrap   behave like a program whose main forgot Kapsel.bootstrap
//   KapselTestDaemon map-memory N   stream a map of N items; print the sum and the peak memory
//   KapselTestDaemon leak-check     crash, time out and kill daemons holding shared memory,
//                                   then exit 0 only if no descriptor, memory or process is left
import Kapsel
import KapselPython
import KapselR
import KapselTestJobs

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments.dropFirst()
if arguments.first != "no-bootstrap" {
    Kapsel.bootstrap(jobs: TestJobs.all, actors: TestActors.all + [PythonSession.self, RSession.self])
}

switch arguments.first {
case "host":
    let count = Int(arguments.dropFirst().first ?? "2") ?? 2
    let daemons = try await Daemons(count)
    for daemon in daemons.status().daemons {
        print(daemon.pid ?? -1)
    }
    print("ready")
    fflush(nil)
    while true { sleep(60) }
case "idle-flood":
    let numbers = arguments.dropFirst().compactMap { Int($0) }
    let outcome = IdleFlood.run(port: numbers.first ?? 0, count: numbers.dropFirst().first ?? 10_000)
    print(outcome.established, outcome.closed, outcome.secondsToClose)
case "under-fire":
    let numbers = arguments.dropFirst().map { Int($0) }
    var settings = HostUnderFire.Settings()
    settings.local = numbers.first.flatMap { $0 } ?? 2
    settings.tcp = numbers.dropFirst().first.flatMap { $0 } ?? 1
    if arguments.count >= 5, let port = Int(arguments[arguments.startIndex + 3]) {
        let user = String(cString: getpwuid(getuid())!.pointee.pw_name)
        settings.ssh = SSHLaunch(
            destination: "\(user)@127.0.0.1", port: port, identityFile: arguments[arguments.startIndex + 4],
            options: ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        )
    }
    try await HostUnderFire.run(settings)
case "map-memory":
    // Streams a map of N trivial items and prints the host's peak resident memory.
    let count = Int(arguments.dropFirst().first ?? "1000") ?? 1000
    let total = try await withDaemons(2) { daemons in
        var sum = 0
        for await (_, result) in daemons.mapStream(0..<count, { Echo($0) }) { sum += try result.get() }
        return sum
    }
    print("sum \(total)")
    print("peak \(MemoryUsage.current().peakResidentKB)")
case "leak-check":
    exit(try await LeakCheck.run() ? 0 : 1)
case "no-bootstrap":
    _ = try await Daemons(1)
    print("unreachable: a daemon without bootstrap must not start daemons")
default:
    print("KapselTestDaemon: a daemon for Kapsel's tests; start it through Daemons")
    exit(64)
}
