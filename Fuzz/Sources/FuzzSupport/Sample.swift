/// A job's arguments with the shapes the coder has paths for: integers of several
/// widths, floating point, text, optionals, arrays with fast paths, dictionaries, an
/// enum with payloads and recursion.
public struct Sample: Codable, Sendable {
    /// One of several shapes.
    public indirect enum Choice: Codable, Sendable {
        /// No payload.
        case none
        /// An integer payload.
        case number(Int64)
        /// Two payloads.
        case pair(String, Double)
        /// A sample inside: recursion.
        case nested(Sample)
    }

    /// A sample with every field set.
    public init(
        id: Int, small: UInt8, signed: Int16, ratio: Double, flag: Bool?, name: String, tags: [String], values: [Double], raw: [UInt8],
        counts: [String: Int32], choice: Choice, children: [Sample]
    ) {
        (self.id, self.small, self.signed, self.ratio, self.flag, self.name) = (id, small, signed, ratio, flag, name)
        (self.tags, self.values, self.raw, self.counts, self.choice, self.children) = (tags, values, raw, counts, choice, children)
    }

    /// A word-sized integer.
    public var id: Int
    /// A byte.
    public var small: UInt8
    /// A small signed integer.
    public var signed: Int16
    /// Floating point.
    public var ratio: Double
    /// An optional.
    public var flag: Bool?
    /// Text.
    public var name: String
    /// An array of text.
    public var tags: [String]
    /// Doubles (a fast path).
    public var values: [Double]
    /// Bytes (a fast path).
    public var raw: [UInt8]
    /// A dictionary.
    public var counts: [String: Int32]
    /// An enum with payloads.
    public var choice: Choice
    /// Recursion through an array.
    public var children: [Sample]

    /// Equality with floating point compared bit for bit (NaN is itself).
    public func sameAs(_ other: Sample) -> Bool {
        id == other.id && small == other.small && signed == other.signed && ratio.bitPattern == other.ratio.bitPattern && flag == other.flag
            && name == other.name && tags == other.tags && values.map(\.bitPattern) == other.values.map(\.bitPattern) && raw == other.raw
            && counts == other.counts && choice.sameAs(other.choice) && children.count == other.children.count
            && zip(children, other.children).allSatisfy { $0.sameAs($1) }
    }
}

extension Sample.Choice {
    /// Equality with floating point compared bit for bit.
    public func sameAs(_ other: Sample.Choice) -> Bool {
        switch (self, other) {
        case (.none, .none): true
        case let (.number(a), .number(b)): a == b
        case let (.pair(a, x), .pair(b, y)): a == b && x.bitPattern == y.bitPattern
        case let (.nested(a), .nested(b)): a.sameAs(b)
        default: false
        }
    }
}
