import Foundation
import Testing

extension ProcessTests {
    @Suite("README")
    struct ReadmeTests {
        static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

        static func normalizedLines(_ text: String) -> [String] {
            text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }

        /// The DocC articles of every module (`Sources/*/Documentation.docc/*.md`).
        static func articles() throws -> [URL] {
            let sources = root.appendingPathComponent("Sources")
            return try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted().flatMap { module -> [URL] in
                let catalog = sources.appendingPathComponent(module).appendingPathComponent("Documentation.docc")
                let files = (try? FileManager.default.contentsOfDirectory(atPath: catalog.path)) ?? []
                return files.filter { $0.hasSuffix(".md") }.sorted().map { catalog.appendingPathComponent($0) }
            }
        }

        /// The ```swift blocks of a Markdown file (the README unless given).
        static func snippets(in file: URL = root.appendingPathComponent("README.md")) throws -> [String] {
            let readme = try String(contentsOf: file, encoding: .utf8)
            var blocks: [String] = []
            var current: [Substring]?
            for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
                if current == nil, line.trimmingCharacters(in: .whitespaces) == "```swift" {
                    current = []
                } else if current != nil, line.trimmingCharacters(in: .whitespaces) == "```" {
                    blocks.append(current!.joined(separator: "\n"))
                    current = nil
                } else {
                    current?.append(line)
                }
            }
            return blocks
        }

        @Test func everySwiftSnippetInTheReadmeAndTheDocCArticlesIsPartOfTheCompiledTour() throws {
            let tour = try String(contentsOf: Self.root.appendingPathComponent("Examples/KapselTour/main.swift"), encoding: .utf8)
            let tourLines = Self.normalizedLines(tour)
            let readme = try Self.snippets()
            #expect(readme.count >= 4)
            let articles = try Self.articles()
            #expect(articles.count >= 10, "a catalog per public module")
            let snippets = try readme + articles.flatMap { try Self.snippets(in: $0) }
            #expect(snippets.count > readme.count)
            for snippet in snippets {
                let lines = Self.normalizedLines(snippet)
                let found = tourLines.indices.contains { start in
                    start + lines.count <= tourLines.count && Array(tourLines[start..<start + lines.count]) == lines
                }
                #expect(found, "snippet not found verbatim in Examples/KapselTour/main.swift:\n\(snippet)")
            }
        }

        @Test func theTourRuns() throws {
            let tour = URL(fileURLWithPath: testDaemonPath).deletingLastPathComponent().appendingPathComponent("KapselTour").path
            // The tour fits a brms model: Stan compiles it, faster at -O1.
            let makevars = temporaryPath("Makevars")
            try "CXXFLAGS = -O1\nCXX14FLAGS = -O1\nCXX17FLAGS = -O1\n".write(toFile: makevars, atomically: true, encoding: .utf8)
            defer { unlink(makevars) }
            let outcome = try runProcess(tour, environment: ["PATH": "/usr/bin:/bin", "R_MAKEVARS_USER": makevars], timeout: 300)
            #expect(outcome.status == 0, "\(outcome.output)")
            #expect(outcome.output.contains("daemon died with signal 11 (SIGSEGV)"))
            #expect(outcome.output.contains("remote error Kapsel.JobFailure sd must be positive, got -1.0"))
            #expect(outcome.output.contains("timed out"))
            #expect(outcome.output.contains("cancelled"))
            #expect(outcome.output.contains("gbm(1.0)"))
            #expect(outcome.output.contains("connections: 2"))
            #expect(outcome.output.contains("19999998.0"))
            #expect(outcome.output.contains("\n15\n16\n"))
            #expect(outcome.output.contains("\n1.5\n"))
            #expect(outcome.output.contains("2000 true\n"))
            #expect(outcome.output.contains("\nsd must be positive, got -1.0\n"))
            #expect(outcome.output.contains("\n(1.5, 2.25)\n2 9\ntrue\n"))
            #expect(outcome.output.contains("\ntrue\ntrue\n200 true\ntrue 100\nprofile local\n"), "the network tour, then the controllers'")
            #expect(outcome.output.contains("profile cluster\n") && outcome.output.contains("batch job") && outcome.output.contains(" slurm "), "the cluster profile ran on Slurm")
            #expect(outcome.output.contains("\ndouble(2.5)\nZeroDivisionError\ndaemon crashed\n300 columnMajor\ntrue\nboom\n1.5\n"), "the Python and R tours, then Arrow's 1.5")
            #expect(outcome.output.contains("\n1.5\n1000.0\ntrue\nnone(2.0)\nnone(3.0)\ntrue\n"), "Arrow, then the Prometheus exposition and a job through the pool's Service")
            #expect(outcome.output.contains("kapsel.termination=signal 11 (SIGSEGV)") && outcome.output.contains("[Kapsel] daemon crashed"), "the crash, logged")
        }
    }
}
