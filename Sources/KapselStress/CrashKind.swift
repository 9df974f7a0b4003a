import Kapsel

#if canImport(Glibc)
import Glibc
#endif

/// How a crash ends a daemon, from inside: what the crash tests and the storm make jobs do.
public enum CrashKind: String, Codable, Sendable, CaseIterable {
    /// A write to an unmapped address: SIGSEGV.
    case segfault
    /// The process kills itself: SIGKILL, which nothing can catch.
    case sigkill
    /// `abort()`: SIGABRT.
    case abort
    /// `exit(3)`: an ordinary exit, with work in flight.
    case exit3
    /// Unbounded recursion into the stack's guard page: SIGSEGV.
    case stackOverflow

    /// Ends this process.
    public func perform() -> Never {
        switch self {
        case .segfault:
            let address = Int(getpid() & 0) + 16
            UnsafeMutablePointer<Int>(bitPattern: address)!.pointee = 42
            fatalError("unreachable: the write above faults")
        case .sigkill:
            kill(getpid(), SIGKILL)
            fatalError("unreachable: SIGKILL")
        case .abort:
            Glibc.abort()
        case .exit3:
            Glibc.exit(3)
        case .stackOverflow:
            _ = recurse(1)
            fatalError("unreachable: the stack overflows")
        }
    }

    /// The termination a crash of this kind produces.
    public var expectedTermination: ProcessTermination {
        switch self {
        case .segfault, .stackOverflow: .signaled(signal: SIGSEGV)
        case .sigkill: .signaled(signal: SIGKILL)
        case .abort: .signaled(signal: SIGABRT)
        case .exit3: .exited(code: 3)
        }
    }
}

@inline(never)
private func recurse(_ depth: Int) -> Int {
    var frame = [Int](repeating: depth, count: 1)
    return withUnsafeMutablePointer(to: &frame) { pointer in
        recurse(depth + 1) + pointer.pointee.count
    }
}

/// Where in a job's life a crash happens.
public enum CrashPhase: String, Codable, Sendable, CaseIterable {
    /// While the daemon decodes the job, before `run()`.
    case decodingJob
    /// Inside `run()`.
    case running
    /// While the daemon encodes the output, after `run()` returned.
    case encodingResult
}

