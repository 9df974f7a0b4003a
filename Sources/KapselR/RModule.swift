import Kapsel

/// An R package seen from Swift: its functions are members, called with labels for R's
/// named arguments. The package is loaded in the daemon on first use, and each function
/// is checked to exist once (a missing one fails with `NoSuchFunction`).
///
/// ```swift
/// let brms = r.module("brms")
/// let fit = try await brms.brm(RFormula("count ~ zAge + (1 | patient)"), data: epilepsy,
///                              family: .call("poisson"), chains: 2, iter: 500)
/// let stats = r.module("stats")
/// let quantile = try await stats.qnorm(0.975).double      // 1.959964
/// ```
@dynamicMemberLookup
public struct RModule: Sendable {
    /// The session the calls run in.
    public let session: RSession
    /// The package's name.
    public let package: String

    /// The function `name` of the package.
    public subscript(dynamicMember name: String) -> RFunction {
        RFunction(session: session, name: "\(package)::\(name)")
    }
}

/// An R function seen from Swift: calling it calls it in the session, unlabelled
/// arguments positional, labelled ones named.
@dynamicCallable
public struct RFunction: Sendable {
    /// The session the calls run in.
    public let session: RSession
    /// The function's name (`package::name`).
    public let name: String

    /// Calls the function; an empty label is a positional argument.
    public func dynamicallyCall(withKeywordArguments arguments: KeyValuePairs<String, any RValueConvertible>) async throws -> RResult {
        try await session.call(name, arguments: arguments.map { RArgument($0.key.isEmpty ? nil : $0.key, $0.value.rValue) })
    }
}
