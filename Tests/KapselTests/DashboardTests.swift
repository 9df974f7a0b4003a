import Foundation
import Kapsel
import KapselDashboard
import KapselTestJobs
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 GET on loopback by hand: what a browser's request is, without one.
struct HTTPProbe {
    var status: Int
    var head: String
    var body: String

    /// Sends `GET path` to `127.0.0.1:port` and reads the answer until the server closes
    /// it or `readFor` passes (for an event stream).
    static func get(port: Int, _ path: String, headers: [String] = [], readFor limit: Duration = .seconds(10)) throws -> HTTPProbe {
        let peer = try RawPeer(port: port)
        let request = (["GET \(path) HTTP/1.1", "Host: 127.0.0.1:\(port)", "Connection: close"] + headers).joined(separator: "\r\n") + "\r\n\r\n"
        try peer.send(Array(request.utf8))
        var bytes: [UInt8] = []
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var chunk = [UInt8](repeating: 0, count: 65536)
        while clock.now < deadline {
            var poller = pollfd(fd: peer.descriptor, events: Int16(POLLIN), revents: 0)
            let left = deadline - clock.now
            guard poll(&poller, 1, Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))) > 0 else { break }
            let count = read(peer.descriptor, &chunk, chunk.count)
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return HTTPProbe(status: status, head: head, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }
}

extension ProcessTests {
    /// The dashboard served from the host, looked at in a real headless Chromium.
    @Suite("Dashboard: the page in a browser, its token, its updates")
    struct DashboardTests {
        static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

        func port(of dashboard: Dashboard) -> Int {
            Int(URL(string: dashboard.url)!.port!)
        }

        @Test func aBrowserShowsTheDaemonsTheCrashAndTheCountersAsTheyChange() async throws {
            try await withTestDaemons(2, configure: { $0.name = "workers" }) { daemons in
                for value in 1...20 { _ = try await daemons.submit(Echo(value)).value }
                _ = await daemons.submit(PrintLine("the last words of daemon zero", then: .segfault)).result
                let dashboard = try await Dashboard.start(daemons)
                // A map under way while the page is open.
                let mapping = Task { await daemons.map(0..<200) { MapStep(.sleep(milliseconds: 20, value: $0)) } }
                let screenshot = Self.root.appendingPathComponent(".build/artifacts/dashboard.png")
                try FileManager.default.createDirectory(at: screenshot.deletingLastPathComponent(), withIntermediateDirectories: true)
                let capture = try runProcess(
                    "/usr/bin/python3", arguments: [Self.root.appendingPathComponent("Tests/Browser/cdp_capture.py").path, "/usr/bin/chromium", dashboard.url, screenshot.path, "3", "30"],
                    environment: ProcessInfo.processInfo.environment, timeout: 60
                )
                mapping.cancel()
                _ = await mapping.value
                await dashboard.stop()

                #expect(capture.status == 0, "live updates reached the page: \(capture.output.suffix(500))")
                let dom = capture.output
                #expect(dom.contains(#"data-source="events""#), "the page was last drawn from the event stream")
                #expect(dom.contains(#"<section class="pool" data-pool="workers">"#))
                #expect(dom.contains(#"<tr class="daemon" data-index="0""#) && dom.contains(#"<tr class="daemon" data-index="1""#))
                #expect(dom.contains(#"data-kind="crashed""#) && dom.contains("SIGSEGV") && dom.contains("the last words of daemon zero"))
                #expect(dom.contains(#"<div class="counter bad" data-name="crashes"><b>1</b>"#))
                let completed = try #require(dom.firstMatch(of: /data-name="completed"><b>(\d+)<\/b>/)).1
                #expect(Int(completed)! >= 20)
                #expect(dom.contains(#"class="map""#), "the map under way")
                let size = (try FileManager.default.attributesOfItem(atPath: screenshot.path)[.size] as? Int) ?? 0
                #expect(size > 10_000, "a screenshot of the page is kept at \(screenshot.path)")
            }
        }

        @Test func beyondLoopbackEveryRequestNeedsTheToken() async throws {
            try await withTestDaemons(1) { daemons in
                var settings = DashboardSettings()
                settings.host = "0.0.0.0"
                await #expect(throws: DashboardError.self) { try await Dashboard.start(daemons, settings: settings) }

                settings.allowRemote = true
                let dashboard = try await Dashboard.start(daemons, settings: settings)
                let token = try #require(dashboard.token)
                #expect(token.count == 64)
                #expect(dashboard.url.hasSuffix("/?token=\(token)"))
                let port = port(of: dashboard)
                for path in ["/", "/snapshot", "/events", "/?token=wrong", "/events?token=\(String(token.dropLast()))0"] {
                    let answer = try HTTPProbe.get(port: port, path, readFor: .seconds(5))
                    #expect(answer.status == 401, "\(path)")
                    #expect(answer.body.isEmpty, "a refusal says nothing else: \(path)")
                }
                let wrongBearer = try HTTPProbe.get(port: port, "/snapshot", headers: ["Authorization: Bearer \(String(repeating: "0", count: 64))"])
                #expect(wrongBearer.status == 401)
                let page = try HTTPProbe.get(port: port, "/?token=\(token)")
                #expect(page.status == 200 && page.body.contains("<title>Kapsel</title>"))
                let snapshot = try HTTPProbe.get(port: port, "/snapshot", headers: ["Authorization: Bearer \(token)"])
                #expect(snapshot.status == 200 && snapshot.body.contains(#""online":1"#))
                let events = try HTTPProbe.get(port: port, "/events?token=\(token)", readFor: .milliseconds(600))
                #expect(events.status == 200 && events.head.lowercased().contains("text/event-stream") && events.body.contains("data: {"))
                await dashboard.stop()
            }
        }

        @Test func sixtyFourBusyDaemonsGetAFewCoalescedUpdatesASecondEachDrawnQuickly() async throws {
            Kapsel.bootstrap(jobs: TestJobs.all, actors: TestActors.all)
            try await withTestDaemons(64, configure: { $0.launch = .inProcess }) { daemons in
                let dashboard = try await Dashboard.start(daemons)
                let load = Task {
                    while !Task.isCancelled { _ = await daemons.map(0..<5_000) { Echo($0) } }
                }
                let events = try HTTPProbe.get(port: port(of: dashboard), "/events", readFor: .seconds(2))
                // The same in a real browser, under the same load: each update is drawn in a
                // few milliseconds.
                let capture = try runProcess(
                    "/usr/bin/python3", arguments: [Self.root.appendingPathComponent("Tests/Browser/cdp_capture.py").path, "/usr/bin/chromium", dashboard.url, "/dev/null", "4", "30"],
                    environment: ProcessInfo.processInfo.environment, timeout: 60
                )
                load.cancel()
                _ = await load.value
                await dashboard.stop()
                // Each event is one `data:` line (between the chunk sizes of the chunked body).
                let updates = events.body.components(separatedBy: .newlines).filter { $0.hasPrefix("data: ") }
                // Four a second by default, however many jobs finish meanwhile.
                #expect(updates.count >= 2 && updates.count <= 10, "\(updates.count) updates in 2 s: \(events.status) \(events.head) \(events.body.prefix(300))")
                #expect(capture.status == 0)
                #expect(capture.output.matches(of: /<tr class="daemon" data-index="\d+"/).count == 64, "a row per daemon")
                let slowest = try #require(capture.output.firstMatch(of: /data-render-ms="([0-9.]+)"/)).1
                #expect(Double(slowest)! < 100, "the slowest draw of 64 daemons took \(slowest) ms")
                let last = try #require(updates.last)
                let snapshot = try #require(try JSONSerialization.jsonObject(with: Data(last.dropFirst("data: ".count).utf8)) as? [String: Any])
                let pool = try #require((snapshot["pools"] as? [[String: Any]])?.first)
                #expect((pool["daemons"] as? [Any])?.count == 64, "every daemon's row")
                #expect((pool["completed"] as? Int ?? 0) > 0, "the figures moved")
            }
        }
    }
}

extension ProcessTests.DashboardTests {
    @Test func kapselDemoWithTheDashboardServesItUntilCtrlC() async throws {
        let kapsel = URL(fileURLWithPath: testDaemonPath).deletingLastPathComponent().appendingPathComponent("kapsel").path
        let output = Pipe()
        let demo = Process()
        demo.executableURL = URL(fileURLWithPath: kapsel)
        demo.arguments = ["demo", "--dashboard"]
        demo.standardOutput = output
        demo.standardError = output
        try demo.run()
        defer { if demo.isRunning { demo.terminate() } }

        // The demo runs, then prints where its dashboard is.
        var printed = ""
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while !printed.contains("Dashboard: http"), clock.now < deadline, demo.isRunning {
            let chunk = output.fileHandleForReading.availableData
            printed += String(decoding: chunk, as: UTF8.self)
        }
        let url = try #require(printed.firstMatch(of: /Dashboard: (http:\/\/127\.0\.0\.1:(\d+)\/)/), "\(printed)")
        let snapshot = try HTTPProbe.get(port: Int(url.2)!, "/snapshot")
        #expect(snapshot.status == 200 && snapshot.body.contains(#""name":"default""#))
        #expect(try HTTPProbe.get(port: Int(url.2)!, "/").body.contains("<title>Kapsel</title>"))

        kill(demo.processIdentifier, SIGINT)
        demo.waitUntilExit()
        printed += String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(demo.terminationStatus == 0)
        #expect(printed.contains("All daemons are stopped."))
    }
}
