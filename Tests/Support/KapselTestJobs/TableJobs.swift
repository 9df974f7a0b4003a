import Kapsel
import KapselArrow

/// Arrow table jobs of the tests.
enum TableJobs {
    static let all: [any Job.Type] = [SummarizeTable.self]
}

/// Sums the non-null values of a float64 column and adds a column of doubled values.
public struct SummarizeTable: Job {
    public var table: SharedTable
    public var column: String
    public init(table: SharedTable, column: String) { self.table = table; self.column = column }

    public struct Output: Codable, Sendable {
        public var sum: Double
        public var nulls: Int
        public var table: SharedTable
        /// Whether the daemon read the column's values from shared memory (not a copy).
        public var zeroCopy: Bool
    }

    public func run() async throws -> Output {
        guard let source = table[column] else { throw JobFailure("no column \(column)") }
        var sum = 0.0
        var doubled: [Double?] = []
        for row in 0..<source.length {
            let value = source.value(row, as: Double.self)
            sum += value ?? 0
            doubled.append(value.map { $0 * 2 })
        }
        let extended = try SharedTable(table.columns + [.primitive("doubled", doubled)])
        return Output(sum: sum, nulls: source.nullCount, table: extended, zeroCopy: source.isSharedMemory)
    }
}
