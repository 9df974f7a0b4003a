#if canImport(Glibc)
import Glibc
#endif

/// Where a host listens for its daemons, as a URL:
///
/// - `unix:///path/to/socket` — a Unix domain socket (what local daemons use by default);
/// - `tcp://127.0.0.1:5555`, `tcp://[::1]:0` — plain TCP, allowed on loopback only unless
///   `RemoteSettings.allowPlainTCP` is set;
/// - `tls+tcp://0.0.0.0:5555`, `tls+tcp://[::]:0` — TCP with TLS (see `RemoteSettings.tls`).
///
/// Port 0 picks a free port; `Daemons.url` reports the real one.
public struct HostAddress: Sendable, Hashable, CustomStringConvertible {
    /// How daemons reach the host.
    public enum Transport: String, Sendable, Hashable {
        /// A Unix domain socket on this machine (`unix:///path`).
        case unix
        /// Plain TCP (`tcp://host:port`): for loopback, or a network you trust.
        case tcp
        /// TCP with TLS (`tls+tcp://host:port`).
        case tls = "tls+tcp"
    }

    /// How daemons reach the host.
    public var transport: Transport
    /// The socket path (`unix`) or the host name or IP address (`tcp`, `tls`).
    public var host: String
    /// The TCP port (0 for a Unix socket).
    public var port: Int

    /// An address.
    public init(transport: Transport, host: String, port: Int) {
        self.transport = transport
        self.host = host
        self.port = port
    }

    /// Parses `unix:///path`, `tcp://HOST:PORT` or `tls+tcp://HOST:PORT`, where HOST is a
    /// name, an IPv4 address or a bracketed IPv6 address.
    public init(parsing url: String) throws(DaemonsError) {
        guard let separator = url.firstRange(of: "://") else {
            throw DaemonsError("'\(url)' is not a host URL: expected unix:///PATH, tcp://HOST:PORT or tls+tcp://HOST:PORT")
        }
        let scheme = String(url[..<separator.lowerBound])
        let rest = String(url[separator.upperBound...])
        guard let transport = Transport(rawValue: scheme) else {
            throw DaemonsError("unknown scheme '\(scheme)' in '\(url)': expected unix, tcp or tls+tcp")
        }
        if transport == .unix {
            guard rest.hasPrefix("/") else { throw DaemonsError("'\(url)': a unix URL needs an absolute path") }
            self.init(transport: .unix, host: rest, port: 0)
            return
        }
        let host: String
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw DaemonsError("'\(url)': an IPv6 address needs its closing ']'") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { throw DaemonsError("'\(url)': a port must follow the address") }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { throw DaemonsError("'\(url)': a port must follow the address") }
            host = String(rest[..<colon])
            guard !host.contains(":") else { throw DaemonsError("'\(url)': write an IPv6 address in brackets, as tcp://[::1]:5555") }
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty else { throw DaemonsError("'\(url)': the address is empty") }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw DaemonsError("'\(url)': '\(portText)' is not a port (0 to 65535)")
        }
        self.init(transport: transport, host: host, port: port)
    }

    /// The URL, with an IPv6 address in brackets.
    public var description: String {
        switch transport {
        case .unix: "unix://" + host
        case .tcp, .tls: "\(transport.rawValue)://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        }
    }

    /// Whether this is a Unix socket or a TCP address on the loopback interface.
    public var isLocalOnly: Bool {
        switch transport {
        case .unix: true
        case .tcp, .tls: host == "localhost" || host == "::1" || host.hasPrefix("127.")
        }
    }

    /// The same address on another port.
    func withPort(_ port: Int) -> HostAddress {
        HostAddress(transport: transport, host: host, port: port)
    }
}
