import Distributed

/// A distributed actor that lives in a daemon: created there by `Daemons.spawn`, called
/// from the host through a proxy with ordinary method-call syntax.
///
/// ```swift
/// distributed actor Counter: KapselActor {
///     typealias ActorSystem = KapselActorSystem
///     private var value: Int
///
///     init(actorSystem: KapselActorSystem, configuration: Int) {
///         self.actorSystem = actorSystem
///         self.value = configuration
///     }
///
///     distributed func add(_ amount: Int) -> Int {
///         value += amount
///         return value
///     }
/// }
///
/// let counter = try await daemons.spawn(Counter.self, configuration: 10)
/// try await counter.add(5)            // 15, computed in the daemon
/// ```
///
/// The daemon must know the type: list it in `Kapsel.bootstrap(jobs:actors:)`.
public protocol KapselActor: DistributedActor where ActorSystem == KapselActorSystem {
    /// What creating the actor takes (sent from the host); `NoConfiguration` by default.
    associatedtype Configuration: Codable & Sendable = NoConfiguration

    /// The stable name the daemon finds the type by; the fully qualified type name by default.
    static var actorTypeName: String { get }

    /// Creates the actor, in its daemon.
    init(actorSystem: KapselActorSystem, configuration: Configuration) async throws

    /// Where the daemon runs calls to actors of this type — the method, then encoding and
    /// sending the answer: an actor whose methods drive a runtime best kept on one thread
    /// (an embedded interpreter) names that thread, so a call reaches it with one hop and
    /// answers from it. Nil (the default): calls go where the actor's executor takes them.
    static var callExecutor: (any TaskExecutor)? { get }
}

extension KapselActor {
    public static var actorTypeName: String { String(reflecting: Self.self) }

    public static var callExecutor: (any TaskExecutor)? { nil }
}

/// The configuration of an actor that needs none.
public struct NoConfiguration: Codable, Sendable, Hashable {
    /// The empty configuration.
    public init() {}
}

/// Which daemon a new actor goes to.
public enum ActorPlacement: Sendable, Hashable {
    /// The daemon holding the fewest actors.
    case leastLoaded
    /// The daemon with this index.
    case daemon(Int)
}

/// What happens to an actor when its daemon dies.
public enum RestartPolicy: Sendable, Hashable {
    /// Nothing: its calls fail with `.actorLost` from then on.
    case never
    /// It is created again, with fresh state and the same configuration, on the daemon
    /// that replaces the dead one; calls made meanwhile wait for it.
    case recreate
}
