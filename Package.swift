// swift-tools-version: 6.1
import PackageDescription

/// Kapsel: isolated worker processes ("daemons") for Swift.
///
/// Targets follow the layers of the design, lowest first:
/// `CKapselShim` (C: syscalls Swift cannot reach) → `KapselWire` (frames, handshake, binary coder)
/// → `Kapsel` (jobs, daemons, dispatcher) → capabilities above it (`KapselSequences`,
/// `KapselPython`, `KapselR`, `KapselSlurm`, `KapselServiceLifecycle`, `KapselDashboard`) → `KapselCLI` (the `kapsel` command).
let package = Package(
    name: "Kapsel",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Kapsel", targets: ["Kapsel"]),
        .library(name: "KapselWire", targets: ["KapselWire"]),
        .library(name: "KapselSharedMemory", targets: ["KapselSharedMemory"]),
        .library(name: "KapselArrow", targets: ["KapselArrow"]),
        .library(name: "KapselSequences", targets: ["KapselSequences"]),
        .library(name: "KapselPython", targets: ["KapselPython"]),
        .library(name: "KapselR", targets: ["KapselR"]),
        .library(name: "KapselSlurm", targets: ["KapselSlurm"]),
        .library(name: "KapselServiceLifecycle", targets: ["KapselServiceLifecycle"]),
        .library(name: "KapselDashboard", targets: ["KapselDashboard"]),
        .library(name: "KapselStress", targets: ["KapselStress"]),
        // Loaded by the PyArrow interoperability test (Tests/Python/arrow_interop.py).
        .library(name: "KapselArrowInterop", type: .dynamic, targets: ["KapselArrowInterop"]),
        .executable(name: "kapsel", targets: ["KapselCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // `swift package generate-documentation`: the DocC catalogs under Sources/*/Documentation.docc.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        .target(name: "CKapselShim"),
        .target(
            name: "KapselWire",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "KapselSharedMemory",
            dependencies: [
                "CKapselShim",
                "KapselWire",
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(name: "CKapselArrow"),
        .target(name: "KapselArrow", dependencies: ["CKapselArrow", "KapselSharedMemory"]),
        .target(
            name: "Kapsel",
            dependencies: [
                "CKapselShim",
                "KapselWire",
                "KapselSharedMemory",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(name: "KapselSequences", dependencies: ["Kapsel"]),
        .target(name: "KapselPython", dependencies: ["Kapsel", "KapselWire", "KapselArrow", "CKapselArrow", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "KapselR",
            dependencies: ["Kapsel", "KapselWire", "KapselArrow", .product(name: "Crypto", package: "swift-crypto"), .product(name: "DequeModule", package: "swift-collections")]
        ),
        .target(name: "KapselSlurm", dependencies: ["Kapsel"]),
        // A pool as a swift-service-lifecycle `Service`, for servers.
        .target(name: "KapselServiceLifecycle", dependencies: ["Kapsel", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        // A live view of pools in a browser, served by Hummingbird (the core stays free of a web server).
        .target(
            name: "KapselDashboard",
            dependencies: [
                "Kapsel",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Proofs of the promise: the crash storm, its jobs and their checks.
        .target(name: "KapselStress", dependencies: ["Kapsel", "CKapselShim"]),
        .executableTarget(
            name: "KapselCLI",
            dependencies: [
                "Kapsel",
                "KapselSequences",
                "KapselPython",
                "KapselR",
                "KapselSlurm",
                "KapselStress",
                "KapselDashboard",
                "CKapselShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The README's tour as a program; the tests run it and check the README against it.
        .executableTarget(
            name: "KapselTour",
            dependencies: [
                "Kapsel", "KapselArrow", "KapselSequences", "KapselPython", "KapselR", "KapselSlurm", "KapselServiceLifecycle", "KapselDashboard",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/KapselTour"
        ),
        // Jobs the tests run, shared by the test daemon executable and the tests.
        .target(name: "KapselTestJobs", dependencies: ["Kapsel", "KapselArrow", "KapselStress"], path: "Tests/Support/KapselTestJobs"),
        // Checks that the compact coder's fast path and `Codable` agree, for the tests of both layers that have fast paths.
        .target(name: "KapselCoderChecks", dependencies: ["KapselSharedMemory", "KapselWire"], path: "Tests/Support/KapselCoderChecks"),
        .target(name: "KapselArrowInterop", dependencies: ["KapselArrow", "CKapselArrow"], path: "Tests/Support/KapselArrowInterop"),
        // The test runner cannot re-launch itself as a daemon: the tests start this one.
        .executableTarget(name: "KapselTestDaemon", dependencies: ["Kapsel", "KapselPython", "KapselR", "KapselTestJobs"], path: "Tests/Support/KapselTestDaemon"),
        .testTarget(
            name: "KapselWireTests",
            dependencies: [
                "KapselWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "KapselSharedMemoryTests",
            dependencies: ["KapselSharedMemory", "KapselWire", "KapselCoderChecks", "CKapselShim", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "KapselArrowTests",
            dependencies: ["KapselArrow", "CKapselArrow", "KapselSharedMemory", "KapselArrowInterop"]
        ),
        .testTarget(name: "KapselSequencesTests", dependencies: ["KapselSequences"]),
        .testTarget(
            name: "KapselTests",
            dependencies: [
                "Kapsel", "KapselWire", "KapselSharedMemory", "KapselCoderChecks", "KapselArrow", "KapselSequences", "KapselPython", "KapselR", "KapselSlurm", "KapselStress", "KapselTestJobs", "KapselTestDaemon", "KapselTour",
                "KapselServiceLifecycle", "KapselDashboard",
                // `kapsel demo --dashboard` is run by a test.
                "KapselCLI",
                "CKapselShim",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
