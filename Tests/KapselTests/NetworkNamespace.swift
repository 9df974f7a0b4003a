import Foundation

/// A network namespace of its own for one test, joined to this one by a veth pair:
/// the host side has `hostAddress`, the namespace side `daemonAddress` (a /30 of
/// 10.77.0.0/16 chosen at random). Removed by `remove()`.
struct NetworkNamespace {
    let name: String
    let hostLink: String
    let hostAddress: String
    let daemonAddress: String

    init() throws {
        let suffix = String(UInt32.random(in: 0..<0xffff), radix: 16)
        let subnet = Int.random(in: 1...250)
        name = "kapsel-test-\(suffix)"
        hostLink = "kvh\(suffix)"
        let daemonLink = "kvd\(suffix)"
        hostAddress = "10.77.\(subnet).1"
        daemonAddress = "10.77.\(subnet).2"
        try Self.ip(["netns", "add", name])
        do {
            try Self.ip(["link", "add", hostLink, "type", "veth", "peer", "name", daemonLink])
            try Self.ip(["link", "set", daemonLink, "netns", name])
            try Self.ip(["addr", "add", "\(hostAddress)/30", "dev", hostLink])
            try Self.ip(["link", "set", hostLink, "up"])
            try Self.ip(["-n", name, "addr", "add", "\(daemonAddress)/30", "dev", daemonLink])
            try Self.ip(["-n", name, "link", "set", daemonLink, "up"])
            try Self.ip(["-n", name, "link", "set", "lo", "up"])
        } catch {
            remove()
            throw error
        }
    }

    /// Brings the host's end of the link up or down (down cuts the namespace off).
    func setLink(up: Bool) throws {
        try Self.ip(["link", "set", hostLink, up ? "up" : "down"])
    }

    /// Deletes the link and the namespace.
    func remove() {
        try? Self.ip(["link", "del", hostLink])
        try? Self.ip(["netns", "del", name])
    }

    private static func ip(_ arguments: [String]) throws {
        let outcome = try runProcess("/usr/sbin/ip", arguments: arguments, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        guard outcome.status == 0 else { throw NetworkNamespaceError("ip \(arguments.joined(separator: " ")) failed: \(outcome.output)") }
    }
}

struct NetworkNamespaceError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
