import Foundation
@testable import Shared

/// Fixtures/wormhole-vectors.json, made by scripts/wormhole-vectors.py with magic-wormhole 0.24
/// and python-spake2 0.9.
enum WormholeVectors {
    static let json: JSONValue = {
        var url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)?
            .appendingPathComponent("wormhole-vectors.json")
        if url == nil || !FileManager.default.fileExists(atPath: url!.path) {
            url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/wormhole-vectors.json")
        }
        let data = try! Data(contentsOf: url!)
        return try! JSONValue(parsing: Array(data))
    }()

    static var spake2: [JSONValue] { json["spake2"]!.arrayValue! }
    static var schedules: [JSONValue] { json["key_schedule"]!.arrayValue! }
}

extension JSONValue {
    /// The hex string member `key`, decoded.
    func hex(_ key: String) -> [UInt8] { Hex.decode(self[key]!.stringValue!)! }
    func str(_ key: String) -> String { self[key]!.stringValue! }
}

