// swift-tools-version: 6.0
// libFuzzer targets for the parsers a peer's bytes reach: built apart from the main
// package, because every module they reach is compiled with `-sanitize=fuzzer`:
//   swift build --package-path Fuzz --scratch-path .build-fuzz \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// SwiftPM links a debug executable's entry point as `<module>_main`: each target defines
// it and hands libFuzzer's driver its `LLVMFuzzerTestOneInput`.
// `.ci/fuzz` builds them and runs each for a bounded time on its seed corpus.
import Foundation
import PackageDescription

/// The main package, by the name SwiftPM gives a package at a path: its folder's.
let kapsel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name, dependencies: products.map { .product(name: $0, package: kapsel) } + ["CFuzzDriver", "FuzzSupport", .product(name: "NIOCore", package: "swift-nio")]
    )
}

let package = Package(
    name: "KapselFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "CFuzzDriver"),
        .target(name: "FuzzSupport", dependencies: [.product(name: "KapselWire", package: kapsel), .product(name: "NIOCore", package: "swift-nio")]),
        fuzzTarget("FuzzFrames", ["KapselWire"]),
        fuzzTarget("FuzzHandshake", ["Kapsel", "KapselWire"]),
        fuzzTarget("FuzzCompact", ["KapselWire"]),
        fuzzTarget("FuzzStreamedAttachments", ["Kapsel", "KapselWire"]),
    ],
    swiftLanguageModes: [.v6]
)
