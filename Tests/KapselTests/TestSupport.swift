import CKapselShim
import Foundation
import Kapsel
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every test that starts processes runs inside this suite, one test at a time:
/// timing-sensitive checks (a time-out within a second, a host's daemons gone within
/// two) and process counts stay meaningful on a 2-core machine.
@Suite(.serialized) struct ProcessTests {}

/// The daemon executable the tests launch, next to the test bundle in the build folder.
let testDaemonPath: String = {
    let bundle = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return bundle.deletingLastPathComponent().appendingPathComponent("KapselTestDaemon").path
}()

/// Options that launch the test daemon.
func testOptions(_ configure: (inout DaemonOptions) -> Void = { _ in }) -> DaemonOptions {
    var options = DaemonOptions()
    options.executable = .path(testDaemonPath)
    configure(&options)
    return options
}

/// Runs `body` with `count` test daemons.
func withTestDaemons<R>(
    _ count: Int = 1,
    isolation: isolated (any Actor)? = #isolation,
    configure: (inout DaemonOptions) -> Void = { _ in },
    _ body: (Daemons) async throws -> R
) async throws -> R {
    try await withDaemons(count, options: testOptions(configure), body)
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
func eventually(within limit: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Whether a process with this pid exists (zombies included).
func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
}

/// A temporary path that does not exist yet.
func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "kapsel-test-\(name)-\(UUID().uuidString)"
}

/// The result of running a process to its end.
struct ProcessOutcome {
    var status: Int32
    var output: String
}

/// Runs an executable with exactly `environment` and returns its exit status and output.
func runProcess(
    _ path: String, arguments: [String] = [], environment: [String: String], workingDirectory: String? = nil, timeout: TimeInterval = 20
) throws -> ProcessOutcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = environment
    if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(5_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return ProcessOutcome(status: process.terminationStatus, output: output)
}

/// A blocking Unix-socket client, for talking to a host the way a misbehaving peer would.
final class RawClient {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Reads until the peer closes (or 5 s pass); returns everything read.
    func readToEnd() -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return result }
            result += buffer[0..<count]
        }
    }

    /// Reads exactly one frame (length prefix included).
    func readFrame() -> [UInt8]? {
        guard let header = readExactly(4) else { return nil }
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard let body = readExactly(length) else { return nil }
        return header + body
    }

    private func readExactly(_ count: Int) -> [UInt8]? {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: max(count, 1))
        while result.count < count {
            let got = read(fd, &buffer, count - result.count)
            if got <= 0 { return nil }
            result += buffer[0..<got]
        }
        return result
    }
}

/// A daemon process started by a test with exactly the environment it is given.
func startDaemonProcess(url: String, secret: String, token: String = "t", environment: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: testDaemonPath)
    process.environment = [
        "KAPSEL_ROLE": "daemon", "KAPSEL_HOST_URL": url, "KAPSEL_SECRET": secret,
        "KAPSEL_TOKEN": token, "SWIFT_BACKTRACE": "enable=no",
    ].merging(environment) { _, new in new }
    process.standardOutput = Pipe()
    process.standardError = process.standardOutput
    try process.run()
    return process
}

/// Starts `command` under `/bin/sh -c`, with only `PATH` in its environment, as a
/// user pasting a launch command would.
func startShell(_ command: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    process.environment = ["PATH": "/usr/bin:/bin"]
    process.standardOutput = Pipe()
    process.standardError = process.standardOutput
    try process.run()
    return process
}

/// Waits (at most 10 s) for a process started with `Process` and returns its status and output.
func finish(_ process: Process) -> ProcessOutcome {
    let deadline = Date().addingTimeInterval(10)
    while process.isRunning && Date() < deadline { usleep(5_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    let pipe = process.standardOutput as! Pipe
    return ProcessOutcome(status: process.terminationStatus, output: String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
}

extension Result {
    /// The failure, if it is one.
    var error: Failure? {
        if case .failure(let error) = self { error } else { nil }
    }
}
