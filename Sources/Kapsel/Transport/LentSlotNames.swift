import KapselSharedMemory

/// The names one side gave the pool slots it lent over one connection, and which of
/// them the peer keeps, so that a slot lent again and again travels as a name instead
/// of a descriptor the peer must receive, inspect and map each time.
///
/// A slot is named the first time it is lent. Its descriptor goes with every loan until
/// one that carried it comes back (its release token returns): the peer has then read
/// that message and keeps the memory under the name, so later loans send the name only.
/// Waiting for that return, rather than counting on the order in which messages leave,
/// keeps this right when several threads write on the connection at once. When a pool
/// is gone its names are forgotten here and the peer is told to drop them. At most
/// `maximumNames` slots are named at once (the peer holds a descriptor for each kept
/// one); others are lent as before, their descriptor with every loan.
struct LentSlotNames {
    private struct Entry {
        let name: UInt64
        var isKept = false
    }

    private var entries: [SlotIdentity: Entry] = [:]
    /// Loans that carried their slot's descriptor, by release token.
    private var introductions: [UInt64: SlotIdentity] = [:]
    private var pools: Set<UInt64> = []
    private var nextName: UInt64 = 1
    private let maximumNames: Int

    init(maximumNames: Int = 256) {
        self.maximumNames = maximumNames
    }

    /// How to announce lending `slot` under release `token`: its name (0 when it gets
    /// none), whether the peer keeps it already (the descriptor stays home), and whether
    /// it is the first slot of its pool named here (whose end must then be watched).
    mutating func lend(_ slot: SlotIdentity, token: UInt64) -> (name: UInt64, isKept: Bool, isNewPool: Bool) {
        guard entries[slot] != nil || entries.count < maximumNames else { return (0, false, false) }
        let entry = entries[slot] ?? Entry(name: takeName())
        entries[slot] = entry
        if !entry.isKept { introductions[token] = slot }
        return (entry.name, entry.isKept, pools.insert(slot.pool).inserted)
    }

    /// The peer gave back the loans of `tokens`: the slots those loans introduced are kept.
    mutating func returned(_ tokens: [UInt64]) {
        for token in tokens {
            guard let slot = introductions.removeValue(forKey: token) else { continue }
            entries[slot]?.isKept = true
        }
    }

    /// The loans of `tokens` never left (sending them failed).
    mutating func abandoned(_ tokens: [UInt64]) {
        for token in tokens { introductions.removeValue(forKey: token) }
    }

    /// Pool `pool` is gone: the names of its slots, no longer in use, for the peer to drop.
    mutating func poolGone(_ pool: UInt64) -> [UInt64] {
        pools.remove(pool)
        let gone = entries.filter { $0.key.pool == pool }
        for slot in gone.keys { entries.removeValue(forKey: slot) }
        introductions = introductions.filter { $0.value.pool != pool }
        return gone.values.map(\.name).sorted()
    }

    private mutating func takeName() -> UInt64 {
        defer { nextName += 1 }
        return nextName
    }
}
