import Kapsel

/// An error from R — a condition R signalled (its class, message, call and the calls
/// that led to it) — or from Kapsel's R bridge (finding, loading or starting R).
///
/// A failed call to a session reaches the host as a `JobError`; `RError(jobError)` reads
/// the R error back from it:
///
/// ```swift
/// do {
///     _ = try await r.eval("stop('boom')")
/// } catch let error as JobError {
///     print(RError(error)!.message)     // boom
/// }
/// ```
public struct RError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The condition's class (`simpleError`, or a package's own), or what went wrong in
    /// the bridge (`RuntimeNotFound`, `RuntimeMismatch`, `Interrupted`, ...).
    public var kind: String
    /// `conditionMessage` of the condition.
    public var message: String
    /// `conditionCall` of the condition, deparsed; empty when it has none.
    public var call: String
    /// The calls on R's stack when the condition was signalled, outermost first.
    public var traceback: [String]

    /// An error of `kind` saying `message`.
    public init(_ kind: String, _ message: String, call: String = "", traceback: [String] = []) {
        self.kind = kind
        self.message = message
        self.call = call
        self.traceback = traceback
    }

    public var description: String {
        var text = "\(kind): \(message)"
        if !call.isEmpty { text += "\n" + Self.callMarker + call }
        if !traceback.isEmpty {
            text += "\n" + Self.tracebackMarker + traceback.enumerated().map { "\n\($0.offset + 1): \($0.element)" }.joined()
        }
        return text
    }

    private static let callMarker = "Call: "
    private static let tracebackMarker = "Traceback:"

    /// The R error a failed call to a session reports, read back from its `JobError`; nil
    /// if the call failed otherwise (a crash, a time-out).
    public init?(_ error: JobError) {
        guard error.code == .remote, error.remoteErrorType?.hasSuffix(".RError") == true else { return nil }
        var lines = error.message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard !lines.isEmpty else { return nil }
        let head = lines.removeFirst()
        let colon = head.firstRange(of: ": ")
        kind = colon.map { String(head[..<$0.lowerBound]) } ?? head
        var message = colon.map { String(head[$0.upperBound...]) } ?? ""
        call = ""
        traceback = []
        var inTraceback = false
        for line in lines {
            if inTraceback {
                if let separator = line.firstRange(of: ": ") { traceback.append(String(line[separator.upperBound...])) }
            } else if line == Self.tracebackMarker {
                inTraceback = true
            } else if line.hasPrefix(Self.callMarker) {
                call = String(line.dropFirst(Self.callMarker.count))
            } else {
                message += "\n" + line
            }
        }
        self.message = message
    }
}
