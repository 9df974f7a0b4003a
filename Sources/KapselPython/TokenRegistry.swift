import Synchronization

/// Values this process lends to the embedded interpreter, by token (an integer Python
/// can hold): handed out by `lend`, read by `value`, given back by `take`.
final class TokenRegistry<Value: Sendable>: Sendable {
    private let state = Mutex<(next: Int64, values: [Int64: Value])>((1, [:]))

    /// Lends `value`; returns its token (never 0).
    func lend(_ value: Value) -> Int64 {
        state.withLock { state in
            let token = state.next
            state.next += 1
            state.values[token] = value
            return token
        }
    }

    /// The value of `token`, if it is lent.
    func value(_ token: Int64) -> Value? {
        state.withLock { $0.values[token] }
    }

    /// Takes the value of `token` back.
    func take(_ token: Int64) -> Value? {
        state.withLock { $0.values.removeValue(forKey: token) }
    }

    /// Values lent now.
    var count: Int { state.withLock { $0.values.count } }
}
