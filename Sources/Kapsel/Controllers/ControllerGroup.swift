/// Named pools side by side — compute profiles, as mirai's `.compute` and crew's
/// controller groups have them: each with its own size, options and launcher, so small
/// work runs on a local pool while big work goes to a cluster.
///
/// ```swift
/// try await withControllers(["local": .local(workers: 0...4), "cluster": cluster]) { group in
///     let small = group.submit(Quick(x: 1))                    // the default (first) profile
///     let big = try group["cluster"].map(1...1_000) { Fit(seed: $0) }
///     print(group.status())
/// }
/// ```
///
/// Stopping the group stops every profile's workers, whatever launched them.
public final class ControllerGroup: Sendable {
    /// The profiles' names, in the order given; the first is the default.
    public let profiles: [String]
    private let pools: [String: Daemons]

    /// Starts a pool for every profile (all at once) and waits until each has its
    /// minimum of workers; if one cannot start, the others are stopped and its error thrown.
    public init(_ profiles: KeyValuePairs<String, ControllerOptions>) async throws {
        precondition(!profiles.isEmpty, "a group needs at least one profile")
        let names = profiles.map(\.key)
        precondition(Set(names).count == names.count, "profile names must differ")
        let started = await withTaskGroup(of: (String, Result<Daemons, any Error>).self) { group in
            for (name, options) in profiles {
                // Each pool logs and counts under its profile's name.
                var options = options
                options.daemons.name = name
                group.addTask { [options] in
                    do { return (name, .success(try await Daemons(controller: options))) } catch { return (name, .failure(error)) }
                }
            }
            var results: [String: Result<Daemons, any Error>] = [:]
            for await (name, result) in group { results[name] = result }
            return results
        }
        let pools = started.compactMapValues { try? $0.get() }
        if let (name, failure) = started.lazy.compactMap({ name, result in result.failure.map { (name, $0) } }).first {
            await Self.stop(Array(pools.values))
            throw DaemonsError("profile \"\(name)\" cannot start: \(failure)")
        }
        self.profiles = names
        self.pools = pools
    }

    /// The pool of `profile`; throws for a profile the group does not have.
    public subscript(profile: String) -> Daemons {
        get throws {
            guard let pool = pools[profile] else {
                throw DaemonsError("no profile \"\(profile)\" in this group; its profiles: \(profiles.joined(separator: ", "))")
            }
            return pool
        }
    }

    /// The default profile's pool: the first one.
    public var defaultPool: Daemons { pools[profiles[0]]! }

    /// Submits `job` to `profile`'s pool (the default profile's unless given), as
    /// `Daemons.submit` does; for a profile the group does not have, the handle resolves
    /// as `.daemonsUnavailable`.
    public func submit<J: Job>(_ job: J, profile: String? = nil, timeout: Duration? = nil, retries: Int? = nil) -> JobHandle<J.Output> {
        guard let pool = pools[profile ?? profiles[0]] else {
            let handle = JobHandle<J.Output>(id: 0, jobType: J.jobTypeName, actorSystem: defaultPool.actorSystem, canceller: nil)
            handle.resolve(.failure(JobError(.daemonsUnavailable, "no profile \"\(profile!)\" in this group; its profiles: \(profiles.joined(separator: ", "))", jobType: J.jobTypeName)))
            return handle
        }
        return pool.submit(job, timeout: timeout, retries: retries)
    }

    /// A snapshot of every profile: its workers launched, online and idle, jobs waiting,
    /// crashes, and each slot.
    public func status() -> ControllerGroupStatus {
        ControllerGroupStatus(profiles: profiles.map { ($0, pools[$0]!.status()) })
    }

    /// Stops every profile's pool (all at once); returns when all their workers are gone.
    public func stop() async {
        await Self.stop(Array(pools.values))
    }

    private static func stop(_ pools: [Daemons]) async {
        await withTaskGroup(of: Void.self) { group in
            for pool in pools { group.addTask { await pool.stop() } }
        }
    }
}

extension ControllerGroup: Stoppable {}

/// What each profile of a `ControllerGroup` is doing.
public struct ControllerGroupStatus: Sendable, CustomStringConvertible {
    /// Each profile's name and status, in the group's order.
    public var profiles: [(name: String, status: DaemonsStatus)]

    /// The status of `profile`, if the group has it.
    public subscript(profile: String) -> DaemonsStatus? {
        profiles.first { $0.name == profile }?.status
    }

    public var description: String {
        profiles.map { "profile \($0.name)\n" + "\($0.status)".split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") }
            .joined(separator: "\n")
    }
}

/// Runs `body` with a group of named pools (`ControllerGroup`) and stops every one of
/// them when it returns or throws.
public func withControllers<Result>(
    _ profiles: KeyValuePairs<String, ControllerOptions>,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (ControllerGroup) async throws -> Result
) async throws -> Result {
    try await withPool(try await ControllerGroup(profiles), body)
}

extension Result {
    /// The error, if it failed.
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { error } else { nil }
    }
}
