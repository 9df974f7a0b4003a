import Foundation

/// A network namespace of its own for one test, joined to this one by a veth pair:
/// the host side has `hostAddress`, the namespace side `daemonAddress` (a /30 of
/// 10.77.0.0/16 chosen at random). Removed by `remove()`.
struct NetworkNamespace {
    let name: String
    let hostLink: String
    let daemonLink: String
    let hostAddress: String
    let daemonAddress: String

    init() throws {
        let suffix = String(UInt32.random(in: 0..<0xffff), radix: 16)
        let subnet = Int.random(in: 1...250)
        name = "kapsel-test-\(suffix)"
        hostLink = "kvh\(suffix)"
        daemonLink = "kvd\(suffix)"
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

    /// Shapes both ends of the link with a token bucket (`tc tbf`): at most `rateMbit`,
    /// and packets queue up to `latencyMilliseconds` before they are dropped — delay and
    /// loss under load. (This kernel has no `sch_netem` for a fixed delay or reordering.)
    func shape(rateMbit: Int, latencyMilliseconds: Int) throws {
        let settings = ["tbf", "rate", "\(rateMbit)mbit", "burst", "512kb", "latency", "\(latencyMilliseconds)ms"]
        try Self.tc(["qdisc", "replace", "dev", hostLink, "root"] + settings)
        try Self.ip(["netns", "exec", name, "/usr/sbin/tc", "qdisc", "replace", "dev", daemonLink, "root"] + settings)
    }

    /// Drops `percent` of the packets entering and leaving the namespace, at random
    /// (nftables' `numgen random`, inside the namespace only); 0 stops it. TCP resends
    /// what is lost, so the receiver also sees segments out of order.
    func dropRandomly(percent: Int) throws {
        try? Self.ip(["netns", "exec", name, "/usr/sbin/nft", "delete", "table", "inet", "chaos"])
        guard percent > 0 else { return }
        let rules = """
            table inet chaos {
                chain input { type filter hook input priority 0; numgen random mod 100 < \(percent) drop; }
                chain output { type filter hook output priority 0; numgen random mod 100 < \(percent) drop; }
            }
            """
        let file = temporaryPath("nft")
        try rules.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Self.ip(["netns", "exec", name, "/usr/sbin/nft", "-f", file])
    }

    /// Deletes the link and the namespace.
    func remove() {
        try? Self.ip(["link", "del", hostLink])
        try? Self.ip(["netns", "del", name])
    }

    private static func tc(_ arguments: [String]) throws {
        let outcome = try runProcess("/usr/sbin/tc", arguments: arguments, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        guard outcome.status == 0 else { throw NetworkNamespaceError("tc \(arguments.joined(separator: " ")) failed: \(outcome.output)") }
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
