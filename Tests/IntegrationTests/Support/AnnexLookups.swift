import Foundation
@testable import AnnexdKit
@testable import Shared

/// What stock git-annex in a repository says about a key, and content.drop on a daemon:
/// shared by the transfer and drop suites.
enum AnnexLookups {
    static func key(_ file: String, in repo: String, annex: TestEnvironment.GitAnnex? = nil) throws -> String {
        try sh("git annex lookupkey \(file)", in: repo, annex: annex).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The object file of `key` in `repo`, or nil when the content is not there.
    static func object(_ key: String, in repo: String, annex: TestEnvironment.GitAnnex) throws -> String? {
        let rel = try sh("git annex contentlocation \(key)", in: repo, annex: annex, allowFailure: true)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return rel.isEmpty ? nil : repo + "/" + rel
    }

    /// UUIDs `git annex whereis` in `repo` lists for `key` (with `untrusted`, untrusted ones too).
    static func whereis(_ key: String, in repo: String, annex: TestEnvironment.GitAnnex, untrusted: Bool = false) throws -> Set<String> {
        let out = try sh("git annex whereis --json --key \(key)", in: repo, annex: annex, allowFailure: true)
        guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("{") }),
              let record = try? JSONValue(parsing: Array(line.utf8)) else { return [] }
        let lists = (record["whereis"]?.arrayValue ?? []) + (untrusted ? record["untrusted"]?.arrayValue ?? [] : [])
        return Set(lists.compactMap { $0["uuid"]?.stringValue })
    }

    /// content.drop on daemon `d`: its results.
    static func drop(on d: DaemonProcess, repo: String, paths: [String] = [], keys: [String] = [], from: String? = nil) throws -> [JSONValue] {
        var params: JSONObject = ["repo": .string(repo)]
        if !paths.isEmpty { params["paths"] = .array(paths.map { .string($0) }) }
        if !keys.isEmpty { params["keys"] = .array(keys.map { .string($0) }) }
        if let from { params["from"] = .string(from) }
        return try d.call("content.drop", .object(params), timeout: 60)["results"]?.arrayValue ?? []
    }

    static func dropCode(_ r: JSONValue?) -> String? { r?["error"]?["code"]?.stringValue }
    static func dropMessage(_ r: JSONValue?) -> String { r?["error"]?["message"]?.stringValue ?? "" }
}
