/// How a type that is not `Codable` — a C handle, a class from a library — or whose
/// `Codable` form is wrong for transport crosses to a daemon and back: as a
/// `Representation` that is `Codable`. A representation may hold shared memory
/// (`SharedArray`, `SharedBuffer`, `SharedTensor`), which travels without being serialized.
///
/// ```swift
/// enum SamplesCodec: TransportCodec {
///     static func represent(_ samples: CSamples) throws -> SharedArray<Double> {
///         try SharedArray(count: samples.count) { $0.update(from: samples.pointer, count: samples.count) }
///     }
///     static func restore(_ shared: SharedArray<Double>) throws -> CSamples {
///         shared.withUnsafeBufferPointer { CSamples(copying: $0) }
///     }
/// }
/// ```
///
/// This is mirai's `serial_config` and Ray's custom serializers, checked by the compiler:
/// use the codec with `Transported` wherever the type appears in a job, its output, or
/// an actor call's arguments and result.
public protocol TransportCodec {
    /// The type this codec carries.
    associatedtype Value
    /// What goes over the connection in its place.
    associatedtype Representation: Codable & Sendable

    /// The value as it travels (called where it is sent).
    static func represent(_ value: Value) throws -> Representation
    /// The value again from what arrived (called where it is received).
    static func restore(_ representation: Representation) throws -> Value
}

/// A value carried by its `TransportCodec`: a `Codable` stand-in for a type that is not,
/// in a job's fields, its output, or an actor call.
///
/// ```swift
/// struct Smooth: Job {
///     @Transported<SamplesCodec> var samples: CSamples
///     func run() async throws -> Transported<SamplesCodec> {
///         Transported(smoothed(samples), using: SamplesCodec.self)
///     }
/// }
/// ```
///
/// It encodes exactly as the codec's representation does; a codec that throws fails the
/// job with `.jobEncodingFailed` (or the matching decoding or result code), like any
/// value that does not cross.
@propertyWrapper
public struct Transported<Codec: TransportCodec>: Codable {
    /// The value.
    public var wrappedValue: Codec.Value

    /// Carries `wrappedValue` (as `@Transported<Codec> var x: Value`).
    public init(wrappedValue: Codec.Value) {
        self.wrappedValue = wrappedValue
    }

    /// Carries `value` with `codec`.
    public init(_ value: Codec.Value, using codec: Codec.Type) {
        self.wrappedValue = value
    }

    /// Restores the value from its representation.
    public init(from decoder: any Decoder) throws {
        wrappedValue = try Codec.restore(Codec.Representation(from: decoder))
    }

    /// Encodes the value's representation.
    public func encode(to encoder: any Encoder) throws {
        try Codec.represent(wrappedValue).encode(to: encoder)
    }
}

/// A job's fields and outputs are `Sendable`: so is a carried value that is.
extension Transported: Sendable where Codec.Value: Sendable {}
