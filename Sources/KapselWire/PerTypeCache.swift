import Synchronization

/// Values worked out once per type and kept: for what a dynamic cast or reflection on a
/// type would otherwise cost on every message.
package final class PerTypeCache<Value: Sendable>: Sendable {
    private let values = Mutex<[ObjectIdentifier: Value]>([:])

    /// An empty cache.
    package init() {}

    /// The value for `type`, from `make` the first time it is asked for.
    package func value(for type: Any.Type, _ make: () -> Value) -> Value {
        let key = ObjectIdentifier(type)
        if let known = values.withLock({ $0[key] }) { return known }
        let value = make()
        values.withLock { $0[key] = value }
        return value
    }
}
