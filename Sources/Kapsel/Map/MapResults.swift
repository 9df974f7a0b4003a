/// The results of `Daemons.mapStream`, as an asynchronous sequence of
/// `(index, result)`, in input order or as they complete.
///
/// ```swift
/// for await (index, result) in daemons.mapStream(1...1_000_000) { Square(x: $0) } {
///     ...
/// }
/// ```
///
/// Items are pulled from the input only as room allows, so memory does not grow with
/// the input; leaving the loop early cancels the jobs still running.
public struct MapResults<Output: Codable & Sendable>: AsyncSequence {
    public typealias Element = (index: Int, result: Result<Output, JobError>)
    public typealias Failure = Never

    private let makeDriver: () -> any MapDriving<Output>

    init(_ makeDriver: @escaping () -> any MapDriving<Output>) {
        self.makeDriver = makeDriver
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(driver: makeDriver())
    }

    /// Delivers one result at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let driver: any MapDriving<Output>

        public mutating func next() async -> Element? {
            await driver.next(isolation: nil)
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> Element? {
            await driver.next(isolation: actor)
        }
    }
}

/// A map under way, whatever its input and job types.
protocol MapDriving<Output>: AnyObject {
    associatedtype Output: Codable & Sendable
    func next(isolation: isolated (any Actor)?) async -> (index: Int, result: Result<Output, JobError>)?
    var stoppedEarly: Bool { get }
}

extension MapDriver: MapDriving {
    typealias Output = Item.Output
}
