import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// One step of a map test: what it does and where it ran.
public struct MapStep: Job {
    public enum Action: Codable, Sendable {
        case echo(Int)
        case sleep(milliseconds: Int, value: Int)
        case fail(String)
        case crash
        case marker(path: String, milliseconds: Int)
    }

    public var action: Action
    public init(_ action: Action) { self.action = action }

    public struct Report: Codable, Sendable, Equatable {
        public var value: Int
        public var daemonIndex: Int
    }

    public func run() async throws -> Report {
        let value: Int
        switch action {
        case .echo(let number):
            value = number
        case .sleep(let milliseconds, let number):
            try await Task.sleep(for: .milliseconds(milliseconds))
            value = number
        case .fail(let message):
            throw JobFailure(message)
        case .crash:
            CrashKind.segfault.perform()
        case .marker(let path, let milliseconds):
            try await Task.sleep(for: .milliseconds(milliseconds))
            close(open(path, O_CREAT | O_WRONLY, 0o644))
            value = 1
        }
        return Report(value: value, daemonIndex: DaemonContext.current?.daemonIndex ?? -1)
    }
}
