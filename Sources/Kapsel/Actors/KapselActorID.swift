import Distributed
import KapselWire

/// The identity of a distributed actor living in a daemon: who named it (the host, or
/// the daemon that created it) and a serial number unique for that creator.
///
/// It stays the same when a restart policy re-creates the actor on a new daemon, so
/// proxies keep working. Encoding and decoding it is how references are counted: a
/// daemon that sends a reference keeps the actor alive until the host drops it.
public struct KapselActorID: Hashable, Sendable, Codable, CustomStringConvertible {
    let wire: WireActorID

    init(_ wire: WireActorID) {
        self.wire = wire
    }

    /// An id named by the host.
    static func host(serial: UInt64) -> KapselActorID {
        KapselActorID(WireActorID(creator: 0, instance: 0, serial: serial))
    }

    /// The daemon slot that created the actor, if a daemon did.
    var creatorSlot: Int? { wire.creator == 0 ? nil : Int(wire.creator) - 1 }

    public var description: String {
        guard let slot = creatorSlot else { return "actor \(wire.serial)" }
        return "actor \(slot).\(wire.instance).\(wire.serial)"
    }

    private enum CodingKeys: String, CodingKey { case creator, instance, serial }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(WireActorID(
            creator: try container.decode(UInt32.self, forKey: .creator),
            instance: try container.decode(UInt32.self, forKey: .instance),
            serial: try container.decode(UInt64.self, forKey: .serial)
        ))
        (decoder.userInfo[.actorSystemKey] as? KapselActorSystem)?.referenceDecoded(self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(wire.creator, forKey: .creator)
        try container.encode(wire.instance, forKey: .instance)
        try container.encode(wire.serial, forKey: .serial)
        (encoder.userInfo[.actorSystemKey] as? KapselActorSystem)?.referenceEncoded(self)
    }
}
