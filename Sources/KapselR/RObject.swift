import Distributed
import Kapsel

/// An R object that stays in its daemon; the host holds this handle. R keeps the object
/// while the host holds a handle of it (one passed back as an argument included), and
/// lets it go when the host drops the last one.
///
/// ```swift
/// let fit = try await r.call("lm", RFormula("dist ~ speed"), named: ["data": .call("get", "cars")])
/// print(try await fit.object!.type)          // lm
/// print(try await fit.object!.printed())     // what print(fit) shows
/// let coefficients = try await r.call("coef", fit).value
/// ```
public distributed actor RObject: KapselActor {
    public typealias ActorSystem = KapselActorSystem

    /// R's thread: the methods call into R where they run.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        RExecutor.shared.asUnownedSerialExecutor()
    }

    /// R's thread: calls run there, from decoding to answering (`KapselActor.callExecutor`).
    public static var callExecutor: (any TaskExecutor)? { RThread.shared }

    /// What the daemon knows of the object when it makes the handle.
    public struct Configuration: Codable, Sendable {
        /// Its classes (or R type), joined with `/`.
        let type: String
    }

    private let typeName: String

    /// A handle of an object R keeps for it (made by the daemon, never by the host).
    public init(actorSystem: KapselActorSystem, configuration: Configuration) {
        self.actorSystem = actorSystem
        self.typeName = configuration.type
    }

    deinit {
        EmbeddedR.current?.releaseObject(id)
    }

    /// The object's classes (`class(x)`, joined with `/`), or its R type when it has none.
    public distributed var type: String { typeName }

    /// What R prints for the object (`print(x)`, as text).
    public distributed func printed() async throws -> String {
        try await run("paste(utils::capture.output(print(.x1)), collapse = \"\\n\")").string ?? ""
    }

    /// The object's attribute `name` (`attr(x, name)`).
    public distributed func attribute(_ name: String) async throws -> RValue {
        try await run("attr(.x1, \(RCode.quoted(name)), exact = TRUE)").value
    }

    /// Calls `function` with the object first and `arguments` after it.
    public distributed func call(_ function: String, arguments: [RArgument] = []) async throws -> RResult {
        guard RCode.isFunctionName(function) else { throw RError("NotAFunctionName", "'\(function)' is not the name of a function") }
        let (code, bindings) = RConverter.call(function, [RArgument(nil, .object(self))] + arguments)
        return try await r().run(code, in: "kapsel.objects", bindings: bindings, system: actorSystem)
    }

    private func run(_ code: String) async throws -> RResult {
        try await r().run(code, in: "kapsel.objects", bindings: [(".x1", .object(self))], system: actorSystem)
    }

    private func r() throws -> EmbeddedR {
        guard let r = EmbeddedR.current else { throw RError("NoR", "no R runs in this daemon") }
        return r
    }
}
