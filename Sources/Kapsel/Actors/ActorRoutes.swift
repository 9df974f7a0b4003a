import KapselWire

/// Where the distributed actors of a pool live, the calls to them not resolved yet, and
/// per daemon slot the calls it was sent and those waiting for it to come online.
///
/// A call to an ordinary actor goes straight to its daemon (actors of one daemon run
/// calls concurrently, so the one-job-at-a-time rule does not apply); a call to a pooled
/// actor is a job (`JobQueue.PooledCall`) and is not kept here.
struct ActorRoutes {
    /// A call or a creation not resolved yet.
    struct CallRecord {
        let id: UInt64
        let kind: CallRequest.Kind
        let actor: KapselActorID
        /// The call target's identifier, or the actor type's registered name.
        let name: String
        /// A readable name for errors.
        let display: String
        /// The arguments, or the creation's configuration.
        let envelope: Envelope
        let resolver: any JobResolver
        let timeout: Duration?
        /// Where it was sent, once sent.
        var sentTo: (slot: Int, instance: Int)?

        /// The deadline of the call, if it has a time limit.
        var deadline: TimerEvent? {
            timeout == nil ? nil : .callTimeout(call: id)
        }
    }

    /// Where an actor lives.
    struct Route {
        var slot: Int
        var instance: Int
        /// How it was created (nil for an actor a daemon created itself).
        let creation: ActorCreation?
        var state: RouteState
        /// Calls held until the actor exists (being created or re-created).
        var waiting: [UInt64] = []

        var isPooled: Bool { creation?.pooled == true }
    }

    /// Whether an actor can take calls.
    enum RouteState {
        case creating
        case live
        case lost(JobError)
    }

    /// The calls of one daemon slot.
    struct SlotCalls {
        /// Sent to the daemon and not answered.
        var sent: Set<UInt64> = []
        /// Waiting for the daemon to come online.
        var waiting: [UInt64] = []
        /// Live actors, as the daemon last reported.
        var actorCount = 0
    }

    var routes: [KapselActorID: Route] = [:]
    var calls: [UInt64: CallRecord] = [:]
    var perSlot: [SlotCalls]

    init(slotCount: Int) {
        perSlot = Array(repeating: SlotCalls(), count: slotCount)
    }

    /// How many ordinary actors each slot holds (slots with none are missing).
    var loadBySlot: [Int: Int] {
        Dictionary(grouping: routes.values.filter { !$0.isPooled }, by: \.slot).mapValues(\.count)
    }

    /// Takes call `id` out of every place it may wait.
    mutating func forgetWaiting(_ id: UInt64, actor: KapselActorID) {
        for slot in perSlot.indices { perSlot[slot].waiting.removeAll { $0 == id } }
        routes[actor]?.waiting.removeAll { $0 == id }
    }
}
