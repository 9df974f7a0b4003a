/// A lazily evaluated random-access sequence: element `i` is computed when it is read,
/// never before, and never kept.
///
/// ```swift
/// let images = LazyIndexed(paths).map(loadImage)            // nothing loaded yet
/// let pairs = images.zip(labels).slice(100..<200)          // still nothing
/// let batches = pairs.batched(size: 32)                    // 4 batches
/// let first = batches[0]                                   // loads 32 images, now
/// ```
///
/// Transforms must be `Sendable`, so the sequence can be evaluated on other threads
/// (`prefetch`).
public struct LazyIndexed<Element>: RandomAccessCollection, Sendable {
    /// Number of elements.
    public let count: Int
    private let element: @Sendable (Int) -> Element

    /// A sequence of `count` elements, element `i` being `element(i)`.
    public init(count: Int, _ element: @escaping @Sendable (Int) -> Element) {
        precondition(count >= 0, "a negative count")
        self.count = count
        self.element = element
    }

    /// A sequence viewing `base`.
    public init<Base: RandomAccessCollection & Sendable>(_ base: Base) where Base.Element == Element {
        self.init(count: base.count) { base[base.index(base.startIndex, offsetBy: $0)] }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> Element {
        precondition(position >= 0 && position < count, "index \(position) out of range 0..<\(count)")
        return element(position)
    }

    /// Each element transformed by `transform`, when read.
    public func map<T>(_ transform: @escaping @Sendable (Element) -> T) -> LazyIndexed<T> {
        let element = self.element
        return LazyIndexed<T>(count: count) { transform(element($0)) }
    }

    /// Pairs of this sequence's and `other`'s elements, as long as the shorter one.
    public func zip<Other>(_ other: LazyIndexed<Other>) -> LazyIndexed<(Element, Other)> {
        let first = self.element
        let second = other.element
        return LazyIndexed<(Element, Other)>(count: Swift.min(count, other.count)) { (first($0), second($0)) }
    }

    /// This sequence followed by `others`.
    public func concatenated(_ others: LazyIndexed<Element>...) -> LazyIndexed<Element> {
        let parts = [self] + others
        var starts: [Int] = []
        var total = 0
        for part in parts {
            starts.append(total)
            total += part.count
        }
        return LazyIndexed(count: total) { [starts] position in
            // The last part starting at or before the position (never an empty one: the
            // part after an empty part starts at the same place).
            var low = 0, high = starts.count - 1
            while low < high {
                let middle = (low + high + 1) / 2
                if starts[middle] <= position { low = middle } else { high = middle - 1 }
            }
            return parts[low][position - starts[low]]
        }
    }

    /// The elements at `range`, renumbered from 0.
    public func slice(_ range: Range<Int>) -> LazyIndexed<Element> {
        slice(from: range.lowerBound, to: range.upperBound, by: 1)
    }

    /// Every `step`-th element from `start` up to (not including) `end`.
    public func slice(from start: Int, to end: Int, by step: Int) -> LazyIndexed<Element> {
        precondition(step > 0 && start >= 0 && end <= count && start <= end, "slice \(start)..<\(end) by \(step) out of range 0..<\(count)")
        let element = self.element
        return LazyIndexed(count: (end - start + step - 1) / step) { element(start + $0 * step) }
    }

    /// Consecutive elements in arrays of `size` (the last one shorter, unless `dropPartial`).
    public func batched(size: Int, dropPartial: Bool = false) -> LazyIndexed<[Element]> {
        precondition(size > 0, "a batch size must be positive")
        let element = self.element
        let total = count
        let batches = dropPartial ? total / size : (total + size - 1) / size
        return LazyIndexed<[Element]>(count: batches) { batch in
            let start = batch * size
            return (start..<Swift.min(start + size, total)).map(element)
        }
    }

    /// This sequence `times` times over.
    public func repeated(times: Int) -> LazyIndexed<Element> {
        precondition(times >= 0, "a negative repetition")
        return cycled(toCount: count * times)
    }

    /// This sequence over and over, up to `total` elements.
    public func cycled(toCount total: Int) -> LazyIndexed<Element> {
        precondition(total == 0 || count > 0, "cannot cycle an empty sequence")
        let element = self.element
        let length = count
        return LazyIndexed(count: total) { element($0 % length) }
    }

    /// `value`, `count` times.
    public static func repeating(_ value: Element, count: Int) -> LazyIndexed<Element> where Element: Sendable {
        LazyIndexed(count: count) { _ in value }
    }
}

extension LazyIndexed where Element: RandomAccessCollection & Sendable, Element.Index == Int {
    /// The elements of batches of `batchSize` elements (the last one may hold
    /// `lastBatchSize`), one by one: the inverse of `batched(size:)`. Reading element `i`
    /// computes only the batch holding it.
    public func unbatched(batchSize: Int, lastBatchSize: Int? = nil) -> LazyIndexed<Element.Element> {
        precondition(batchSize > 0, "a batch size must be positive")
        let element = self.element
        let total = count == 0 ? 0 : (count - 1) * batchSize + (lastBatchSize ?? batchSize)
        return LazyIndexed<Element.Element>(count: total) { position in
            element(position / batchSize)[position % batchSize]
        }
    }
}
