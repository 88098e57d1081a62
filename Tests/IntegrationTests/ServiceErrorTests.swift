import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Each service's typed errors reach a client as one JSON-RPC error (code, reason, a message
/// that says what to do), mapped in one place; a refused request changes nothing.
@Suite(.timeLimit(minutes: 10)) struct ServiceErrorTests {
    @Test func everyKindHasItsCode() {
        let expected: [(FailureKind, Int)] = [
            (.invalidArgument, -32602), (.notFound, -32001), (.alreadyExists, -32002), (.invalidState, -32003),
            (.permissionDenied, -32004), (.unavailable, -32005), (.busy, -32006), (.gitFailed, -32010), (.internalFailure, -32603),
        ]
        struct Sample: ServiceError {
            let kind: FailureKind
            var reason: String { "sample" }
            var details: JSONObject { ["peer": "nas"] }
            var description: String { "what went wrong; what to do" }
        }
        for (kind, code) in expected {
            let e = RPCError(Sample(kind: kind))
            #expect(e.code == code && e.reason == "sample" && e.message == "what went wrong; what to do" && e.data["peer"] == "nas")
        }
    }

    @Test func refusalsFromEachServiceReachTheClient() throws {
        let d = try DaemonProcess(extraArguments: ["--tor-helper", "/nonexistent/annex-tor-helper"])
        let scratch = Scratch("annexd-errors")
        let repo = scratch.path + "/r"
        _ = try sh("git init -q r && cd r && git annex init -q r && mkdir ../plain", in: scratch.path)
        _ = try d.call("repo.add", .object(["path": .string(repo)]))
        _ = try d.call("peer.invite", .object(["repo": .string(repo), "name": "nas"]))
        let onion = try #require(try d.call("repo.info", .object(["repo": .string(repo)]))["onion"]?.stringValue)
        let goodAddress = "tor-annex::\(onion):1234:" + String(repeating: "ab", count: 64)

        func refusal(_ method: String, _ params: JSONObject) throws -> RPCError {
            do {
                _ = try d.call(method, .object(params))
            } catch let e as RPCError {
                return e
            }
            Issue.record("\(method) \(params) was not refused")
            return RPCError(code: 0, message: "", reason: "")
        }
        let cases: [(String, JSONObject, Int, String)] = [
            ("repo.info", ["repo": "/no/such/repo"], -32001, "repo_not_found"),
            ("repo.add", ["path": .string(scratch.path + "/plain")], -32602, "not_an_annex_repo"),
            ("peer.invite", ["repo": .string(repo), "name": "../evil"], -32602, "invalid_peer_name"),
            ("peer.invite", ["repo": .string(repo), "name": "nas"], -32002, "peer_exists"),
            ("peer.revoke", ["repo": .string(repo), "name": "ghost"], -32001, "peer_not_found"),
            ("peer.link", ["repo": .string(repo), "name": "x", "address": "tor-annex::nope.onion:1:abc"], -32602, "invalid_address"),
            ("peer.link", ["repo": .string(repo), "name": "-x", "address": .string(goodAddress)], -32602, "invalid_remote_name"),
            ("remote.remove", ["repo": .string(repo), "name": "ghost"], -32001, "remote_not_found"),
            ("pair.submit", ["id": "0011223344556677", "code": "7-guitarist-revenge"], -32001, "pairing_not_found"),
            ("pair.cancel", ["id": "0011223344556677"], -32001, "pairing_not_found"),
            ("tor.enableSystem", ["repo": .string(repo)], -32005, "helper_failed"),
        ]
        for (method, params, code, reason) in cases {
            let e = try refusal(method, params)
            #expect(e.code == code && e.reason == reason, "\(method): \(e)")
            #expect(!e.message.isEmpty && !e.message.contains("Error("), "\(method): the message is for people: \(e.message)")
        }
        // Nothing changed: still one repository with its one peer, no remote.
        #expect(try d.call("repo.list")["repos"]?.arrayValue?.count == 1)
        let peers = try d.call("peer.list", .object(["repo": .string(repo)]))["peers"]?.arrayValue ?? []
        #expect(peers.compactMap { $0["name"]?.stringValue } == ["nas"])
        #expect(try sh("git remote", in: repo).isEmpty)
    }
}
