/// The secret a dashboard bound beyond loopback asks of every request.
enum DashboardToken {
    /// 32 random bytes from the system's secure generator (the kernel's `getrandom`), as hex.
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Whether `given` is `token`, in time that does not depend on where they differ.
    static func matches(_ given: Substring?, _ token: String) -> Bool {
        guard let given else { return false }
        let left = Array(given.utf8), right = Array(token.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
