import KapselWire

/// A batch on the compact coder's fast path: the node its synthesized `Codable`
/// conformance gives (`items`, an array of the jobs), without the containers.
extension MapBatch: CompactFastPath {
    func compactValue(in coder: CompactNodeEncoding) throws -> CompactValue? {
        .map([(CodingKeys.items.stringValue, .array(try items.map { try coder.node(for: $0) }))])
    }

    /// Anything but the exact shape written above (or an item that does not decode) is
    /// left to `init(from:)`, which throws the full error.
    static func fromCompact(_ node: CompactValue, in coder: CompactNodeDecoding) throws -> Self? {
        guard case .map(let entries) = node, entries.count == 1, entries[0].key == CodingKeys.items.stringValue,
              case .array(let nodes) = entries[0].value else { return nil }
        var items: [Item] = []
        items.reserveCapacity(nodes.count)
        for node in nodes {
            guard let item = try? coder.value(Item.self, from: node) else { return nil }
            items.append(item)
        }
        return Self(items: items)
    }
}

/// A batch's output on the compact coder's fast path: the node its synthesized
/// `Codable` conformance gives (`outcomes`, then `runNanoseconds`; each outcome a pair
/// of tag and value), built and read without the keyed and unkeyed containers. It is
/// on every batch a map or a prefetch sends back; the containers' fixed costs (boxes,
/// generic metadata of each container type) were most of the host's decoding time.
extension MapBatch.Output: CompactFastPath {
    func compactValue(in coder: CompactNodeEncoding) throws -> CompactValue? {
        var nodes: [CompactValue] = []
        nodes.reserveCapacity(outcomes.count)
        for outcome in outcomes {
            switch outcome {
            case .success(let output):
                nodes.append(.array([.int(Int64(MapItemOutcome<Item.Output>.successTag)), try coder.node(for: output)]))
            case .failure(let failure):
                nodes.append(.array([.int(Int64(MapItemOutcome<Item.Output>.failureTag)), try coder.node(for: failure)]))
            }
        }
        return .map([(CodingKeys.outcomes.stringValue, .array(nodes)), (CodingKeys.runNanoseconds.stringValue, .int(runNanoseconds))])
    }

    /// Anything but the exact shape written above (or a part that does not decode) is
    /// left to `init(from:)`, which throws the full error.
    static func fromCompact(_ node: CompactValue, in coder: CompactNodeDecoding) throws -> Self? {
        guard case .map(let entries) = node, entries.count == 2,
              entries[0].key == CodingKeys.outcomes.stringValue, case .array(let nodes) = entries[0].value,
              entries[1].key == CodingKeys.runNanoseconds.stringValue, let runNanoseconds = entries[1].value.integer(as: Int64.self)
        else { return nil }
        var outcomes: [MapItemOutcome<Item.Output>] = []
        outcomes.reserveCapacity(nodes.count)
        for node in nodes {
            guard case .array(let pair) = node, pair.count == 2, let tag = pair[0].integer(as: Int.self) else { return nil }
            switch tag {
            case MapItemOutcome<Item.Output>.successTag:
                guard let output = try? coder.value(Item.Output.self, from: pair[1]) else { return nil }
                outcomes.append(.success(output))
            case MapItemOutcome<Item.Output>.failureTag:
                guard let failure = try? coder.value(MapItemFailure.self, from: pair[1]) else { return nil }
                outcomes.append(.failure(failure))
            default:
                return nil
            }
        }
        return Self(outcomes: outcomes, runNanoseconds: runNanoseconds)
    }
}
