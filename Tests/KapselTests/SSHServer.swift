import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real OpenSSH server for one test, on 127.0.0.1 on a free high port, with its own
/// host key and one client key allowed to log in as the current user.
final class SSHServer {
    let port: Int
    let clientKey: String
    let user: String
    private let directory: String
    private let process: Process

    init() throws {
        directory = temporaryPath("sshd")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        for key in ["host_key", "client_key"] {
            let outcome = try runProcess("/usr/bin/ssh-keygen", arguments: ["-q", "-t", "ed25519", "-N", "", "-f", "\(directory)/\(key)"], environment: [:])
            guard outcome.status == 0 else { throw SSHServerError("ssh-keygen failed: \(outcome.output)") }
        }
        clientKey = "\(directory)/client_key"
        try FileManager.default.copyItem(atPath: "\(directory)/client_key.pub", toPath: "\(directory)/authorized_keys")
        user = String(cString: getpwuid(getuid())!.pointee.pw_name)
        port = try Self.freePort()
        let configuration = """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(directory)/host_key
            AuthorizedKeysFile \(directory)/authorized_keys
            PidFile \(directory)/sshd.pid
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            StrictModes no
            UsePAM no
            AllowTcpForwarding yes
            """
        try configuration.write(toFile: "\(directory)/sshd_config", atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/sshd")
        process.arguments = ["-D", "-e", "-f", "\(directory)/sshd_config"]
        process.standardOutput = Pipe()
        process.standardError = process.standardOutput
        try process.run()
        guard Self.waitUntilListening(port) else {
            process.terminate()
            throw SSHServerError("sshd did not start listening on 127.0.0.1:\(port)")
        }
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The listening sshd's pid (each session is a child of it).
    var pid: Int32 { process.processIdentifier }

    /// `ssh` options that trust this server's fresh host key.
    var clientOptions: [String] {
        ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
    }

    /// A TCP port nothing listens on right now.
    static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw SSHServerError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func waitUntilListening(_ port: Int) -> Bool {
        for _ in 0..<200 {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(socket)
            if connected { return true }
            usleep(25_000)
        }
        return false
    }
}

struct SSHServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
