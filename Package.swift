// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "vllm-warden",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "warden", targets: ["warden"]),
        .executable(name: "vllm-sim", targets: ["vllm-sim"]),
        .library(name: "WardenConfig", targets: ["WardenConfig"]),
        .library(name: "VLLMSim", targets: ["VLLMSim"]),
        .library(name: "WardenGateway", targets: ["WardenGateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "WardenConfig",
            dependencies: ["WardenJSON"],
            swiftSettings: strictSettings
        ),
        .target(name: "CWardenShims"),
        .target(
            name: "WardenNIOSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .target(
            name: "WardenGateway",
            dependencies: [
                "WardenConfig", "WardenJSON", "WardenNIOSupport", "CSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WardenPreflight",
            dependencies: ["WardenConfig", "WardenJSON", "CWardenShims"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WardenSystemd",
            dependencies: ["WardenConfig", "WardenPreflight", "WardenJSON"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WardenAudit",
            dependencies: ["WardenConfig", "WardenPreflight", "WardenSystemd", "WardenJSON"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WardenJSON",
            swiftSettings: strictSettings
        ),
        .target(
            name: "VLLMSim",
            dependencies: [
                "WardenJSON",
                "WardenNIOSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "warden",
            dependencies: [
                "WardenConfig",
                "WardenPreflight",
                "WardenSystemd",
                "WardenAudit",
                "WardenGateway",
                "VLLMSim",
                "WardenJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "vllm-sim",
            dependencies: [
                "VLLMSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WardenConfigTests",
            dependencies: ["WardenConfig"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WardenCLITests",
            dependencies: ["warden", "VLLMSim", "WardenGateway", "WardenTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WardenPreflightTests",
            dependencies: ["WardenPreflight"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WardenSystemdTests",
            dependencies: ["WardenSystemd"],
            resources: [.copy("Golden")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WardenGatewayTests",
            dependencies: [
                "WardenGateway", "VLLMSim", "WardenSystemd", "WardenTestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WardenAuditTests",
            dependencies: ["WardenAudit", "WardenSystemd", "VLLMSim"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WardenJSONTests",
            dependencies: ["WardenJSON"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WardenTestSupport",
            path: "Tests/WardenTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VLLMSimTests",
            dependencies: ["VLLMSim", "WardenTestSupport"],
            swiftSettings: strictSettings
        ),
    ]
)
