import ArgumentParser
import CKapselShim
import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// W0: the floor: 16-byte blocking ping-pong between two processes over a Unix stream
/// socket and over TCP loopback, with no framework at all.
enum FloorBench {
    struct Floor {
        var unixMedian: Double
    }

    static let roundTrips = 100_000
    static let warmUp = 2_000

    static func run() throws -> Floor {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { throw BenchError("socketpair failed") }
        let unixPeer = try spawnPeer(arguments: ["_echo-peer"], stdin: pair[1])
        close(pair[1])
        let unix = measure(fd: pair[0])
        close(pair[0])
        reap(unixPeer)
        BenchReport.emit("W0", "unix", "rtt_us_p50", unix.median)
        BenchReport.emit("W0", "unix", "rtt_us_p99", unix.percentile(0.99))

        let (listener, port) = try listenOnLoopback()
        let tcpPeer = try spawnPeer(arguments: ["_echo-peer", "--tcp-port", String(port)], stdin: STDIN_FILENO)
        let connection = accept(listener, nil, nil)
        close(listener)
        guard connection >= 0 else { throw BenchError("the TCP echo peer did not connect") }
        setNoDelay(connection)
        let tcp = measure(fd: connection)
        close(connection)
        reap(tcpPeer)
        BenchReport.emit("W0", "tcp", "rtt_us_p50", tcp.median)
        BenchReport.emit("W0", "tcp", "rtt_us_p99", tcp.percentile(0.99))
        return Floor(unixMedian: unix.median)
    }

    private static func measure(fd: Int32) -> Samples {
        var message = [UInt8](repeating: 7, count: 16)
        var samples: [Double] = []
        samples.reserveCapacity(roundTrips)
        let clock = ContinuousClock()
        for index in 0..<(warmUp + roundTrips) {
            let start = clock.now
            writeFully(fd, &message)
            readFully(fd, &message)
            if index >= warmUp { samples.append((clock.now - start).microseconds) }
        }
        return Samples(samples)
    }

    private static func spawnPeer(arguments: [String], stdin: Int32) throws -> pid_t {
        guard let executable = ProcessInspection.currentExecutable() else { throw BenchError("cannot find this executable") }
        let argv = [executable] + arguments
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let cEnvironment: [UnsafeMutablePointer<CChar>?] = [nil]
        var pid: pid_t = 0
        let rc = cArguments.withUnsafeBufferPointer { argvPointer in
            cEnvironment.withUnsafeBufferPointer { envPointer in
                kapsel_spawn(executable, argvPointer.baseAddress, envPointer.baseAddress, stdin, STDOUT_FILENO, STDERR_FILENO, 1, &pid)
            }
        }
        guard rc == 0 else { throw BenchError("cannot start the echo peer: error \(rc)") }
        return pid
    }

    private static func reap(_ pid: pid_t) {
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    private static func listenOnLoopback() throws -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(fd, generic, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, generic, &length) == 0
            }
        }
        guard bound else { throw BenchError("cannot listen on 127.0.0.1") }
        return (fd, UInt16(bigEndian: address.sin_port))
    }
}

/// `kapsel _echo-peer`: the other end of W0. Echoes 16-byte messages on standard
/// input, or on a TCP connection to 127.0.0.1:PORT, until the connection closes.
struct EchoPeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_echo-peer", shouldDisplay: false)

    @Option var tcpPort: UInt16?

    func run() throws {
        var fd = STDIN_FILENO
        if let tcpPort {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = tcpPort.bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard connected else { throw BenchError("cannot connect to 127.0.0.1:\(tcpPort)") }
            setNoDelay(fd)
        }
        var message = [UInt8](repeating: 0, count: 16)
        while readFully(fd, &message) {
            writeFully(fd, &message)
        }
    }
}

@discardableResult
private func readFully(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
    var offset = 0
    while offset < buffer.count {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, $0.count - offset) }
        if count <= 0 { return false }
        offset += count
    }
    return true
}

private func writeFully(_ fd: Int32, _ buffer: inout [UInt8]) {
    var offset = 0
    while offset < buffer.count {
        let count = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if count <= 0 { return }
        offset += count
    }
}

private func setNoDelay(_ fd: Int32) {
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
}

/// A benchmark that could not run.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
