// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "annexd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "annexd", targets: ["annexd"]),
        .executable(name: "annex-cli", targets: ["annex-cli"]),
        .executable(name: "annex-tor-helper", targets: ["annex-tor-helper"]),
        .executable(name: "annex-notify", targets: ["annex-notify"]),
        .library(name: "Shared", targets: ["Shared"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", path: "Sources/CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CJansson", path: "Sources/CJansson", pkgConfig: "jansson",
                       providers: [.apt(["libjansson-dev"])]),
        .systemLibrary(name: "CDBus", path: "Sources/CDBus", pkgConfig: "dbus-1",
                       providers: [.apt(["libdbus-1-dev"])]),
        // Small C wrappers for Linux calls the Glibc module does not export.
        .target(name: "CShims", path: "Sources/CShims"),
        // Pure cores: keys, backends, P2P codec and state machines. No sockets, no processes.
        .target(name: "Shared", dependencies: [
            "CSodium", "CJansson",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The daemon's I/O shells: object store, content locks, git-annex plumbing, P2P sessions.
        .target(name: "AnnexdKit", dependencies: [
            "Shared", "CShims", "TorrcKit",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "NIOSOCKS", package: "swift-nio-extras"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "annexd", dependencies: [
            "AnnexdKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // What clients of the daemon share: the RPC client over the unix socket, and the
        // desktop notifier's pure pieces (event policy, subscription state).
        .target(name: "ClientKit", dependencies: ["Shared"]),
        .executableTarget(name: "annex-cli", dependencies: [
            "Shared", "ClientKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The desktop notifier: annexd's events as org.freedesktop.Notifications (libdbus-1).
        .executableTarget(name: "annex-notify", dependencies: [
            "ClientKit", "Shared", "CDBus",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The torrc model, and the privileged helper that edits the system torrc (Foundation only).
        .target(name: "TorrcKit"),
        .executableTarget(name: "annex-tor-helper", dependencies: ["TorrcKit"]),
        // libFuzzer targets over the pure parsers and machines; annexd-fuzz runs them (built for
        // fuzzing only by `make fuzz`; the corpus test runs every committed input once).
        .target(name: "FuzzTargets", dependencies: ["Shared", "TorrcKit"]),
        .target(name: "CFuzzerDriver", path: "Sources/CFuzzerDriver"),
        .executableTarget(name: "annexd-fuzz", dependencies: ["FuzzTargets", "CFuzzerDriver"]),
        .executableTarget(name: "annexd-bench", dependencies: ["AnnexdKit", "Shared"],
                          path: "Sources/annexd-bench"),
        // Recorded git-annex P2P sessions (transcripts/), their parser and the recording setup as
        // data, for the replay tests of SharedTests (pure machines) and AnnexdKitTests (real session).
        .target(name: "TranscriptSupport", dependencies: ["Shared"], path: "Tests/TranscriptSupport",
                resources: [.copy("transcripts")]),
        .testTarget(name: "SharedTests", dependencies: ["Shared", "TranscriptSupport", "CJansson"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "AnnexdKitTests", dependencies: ["AnnexdKit", "Shared", "TranscriptSupport"]),
        .testTarget(name: "TorrcKitTests", dependencies: ["TorrcKit"]),
        .testTarget(name: "ClientKitTests", dependencies: ["ClientKit", "Shared"]),
        .testTarget(name: "FuzzCorpusTests", dependencies: ["FuzzTargets"]),
        .testTarget(name: "IntegrationTests", dependencies: ["AnnexdKit", "Shared", "TorrcKit"],
                    exclude: ["Support/socks-standin.py", "Support/notification-bus.py"]),
    ]
)
