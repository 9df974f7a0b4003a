import Hummingbird
import NIOCore

/// The dashboard's three addresses: the page (`/`), the newest figures as JSON
/// (`/snapshot`) and the live stream of them (`/events`, server-sent events). With a
/// token, each answers 401 with an empty body unless the request carries it.
struct DashboardRoutes: Sendable {
    let collector: Collector
    let token: String?
    let stopping: StopFlag

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { request, _ in
            guard authorized(request) else { return Self.unauthorized }
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("/snapshot") { request, _ in
            guard authorized(request) else { return Self.unauthorized }
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: collector.latest.json)))
        }
        router.get("/events") { request, _ in
            guard authorized(request) else { return Self.unauthorized }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: ResponseBody { writer in
                try await stream(to: &writer)
            })
        }
        return router
    }

    /// Sends each new snapshot as one event, at most once per update interval, until the
    /// client leaves or the dashboard stops.
    private func stream(to writer: inout any ResponseBodyWriter) async throws {
        var sent = -1
        while !stopping.isSet, !Task.isCancelled {
            let (json, version) = collector.latest
            if version != sent {
                sent = version
                var event = ByteBuffer(string: "data: ")
                event.writeBytes(json)
                event.writeString("\n\n")
                try await writer.write(event)
            }
            try await Task.sleep(for: collector.settings.updateInterval)
        }
        try await writer.finish(nil)
    }

    private func authorized(_ request: Request) -> Bool {
        guard let token else { return true }
        if DashboardToken.matches(request.uri.queryParameters["token"], token) { return true }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
        return DashboardToken.matches(header.dropFirst("Bearer ".count), token)
    }

    private static var unauthorized: Response {
        Response(status: .unauthorized, headers: [.contentLength: "0"], body: .init())
    }
}
