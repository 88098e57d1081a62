#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Every event annexd publishes is declared once (Sources/Shared/RPC/Events), listed in the
/// OpenRPC document with its schema, and delivered with exactly its declared fields.
@Suite(.timeLimit(minutes: 10)) struct EventCatalogueTests {
    static let repo = EventRepo(path: "/srv/annex/photos", uuid: "4f1c8a52-0000-4000-8000-000000000001")
    static let info = RepoInfo(uuid: repo.uuid, path: repo.path, bare: false,
                               onion: "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion", port: 4242,
                               socket: "/run/annexd/p2p/4f1c8a52.sock", peers: 1)

    /// One of each kind.
    /// A transfer with every optional field set, and one with none.
    static let transfer = TransferInfo(id: "t0123456789abcdef", repo: "/r", direction: .get,
                                       peer: TransferPeer(uuid: "u", name: "nas"), key: "SHA256E-s1--00", file: "a b.jpg",
                                       size: 1, state: .failed, bytes: 1, resumedFrom: 1, rate: 2.5, eta: 3, attempt: 2,
                                       nextRetry: 1e9, error: TransferFailure(code: "stalled", message: "m"), queuedAt: 1e9)
    static let bare = TransferInfo(id: "t1", repo: "/r", direction: .put, peer: nil, key: "K", file: nil, size: nil, queuedAt: 0)
    static let samples: [any AnnexdEvent] = [
        DaemonStopping(), EventSnapshot(repos: [info], connections: 2),
        RepoAdded(info), RepoRemoved(repo: repo), RepoFailed(repo: repo, error: "gone"),
        PeerInvited(repo: repo, peer: "nas", access: "read-write"), PeerRevoked(repo: repo, peer: "nas"),
        PeerAccessChanged(repo: repo, peer: "nas", access: "read-only"),
        PeerConnected(repo: repo, clientUUID: "c", peer: "nas"), PeerAuthFailed(repo: repo, clientUUID: "c"),
        PeerLinked(repo: repo, remote: "laptop", remoteUUID: "u", address: info.address), PeerUnlinked(repo: repo, remote: "laptop"),
        RemoteConnected(repo: repo, peer: WatchedPeer(uuid: "u", name: "laptop")),
        RemoteDisconnected(repo: repo, peer: WatchedPeer(uuid: nil, name: "laptop"), reason: "connection_lost",
                           message: "the connection to laptop ended", nextRetry: 1_700_000_000.5),
        RemoteChanged(repo: repo, peer: WatchedPeer(uuid: "u", name: "laptop"), refs: ["refs/heads/main"]),
        ContentReceived(repo: repo, key: "SHA256E-s1--00"), ContentSent(repo: repo, key: "SHA256E-s1--00"),
        TransferQueued(repo: repo, transfer: transfer), TransferStarted(repo: repo, transfer: transfer),
        TransferProgress(repo: repo, transfers: [transfer, bare]), TransferPaused(repo: repo, transfer: bare),
        TransferResumed(repo: repo, transfer: transfer), TransferFinished(repo: repo, transfer: transfer),
        TransferFailed(repo: repo, transfer: transfer), TransferCanceled(repo: repo, transfer: bare),
        ContentRemoved(repo: repo, key: "SHA256E-s1--00"),
        SyncStarted(repo: repo, peers: ["nas", "laptop"]),
        SyncFinished(repo: repo, merged: true, peers: [SyncPeerResult(uuid: "u", name: "nas", pulled: true, pushed: true),
                                                       SyncPeerResult(uuid: nil, name: "laptop", error: TransferFailure(code: "peer_unreachable", message: "m"))]),
        SyncFailed(repo: repo, reason: "git annex merge failed"),
        PairCode(repo: repo, pairing: "p", name: "peer1", code: "7-guitarist-revenge"),
        PairProgress(repo: repo, pairing: "p", stage: "exchanging", message: "m"),
        PairSucceeded(repo: repo, pairing: "p", remote: "peer1", remoteUUID: "u", address: info.address),
        PairFailed(repo: repo, pairing: "p", reason: "wrong_code", error: "e"),
        TorConnected(kind: "own", control: "/run/annexd/tor/control", socks: nil), TorDisconnected(error: "e", retryIn: 2),
        TorBootstrap(progress: 10, tag: "conn_done", summary: "Connected to a relay", warning: "w", recommendation: nil),
        TorControlSocketEnabled(socket: "/run/tor/control", group: "debian-tor"),
        TorHiddenServiceEnabled(repo: repo, onion: info.onion, port: 4242),
        OnionReady(repo: repo, onion: info.onion, seconds: 1.5), OnionFailed(repo: repo, onion: info.onion, error: "e"),
    ]

    static let envelope = ["id", "boot", "type", "time"]

    static func type(of e: any AnnexdEvent) -> String { Swift.type(of: e).type }

    /// The event's fields as a subscriber receives them (through the real log and notification text).
    static func delivered(_ e: some AnnexdEvent, via log: EventLog) throws -> JSONValue {
        let published = log.publish(e)
        let notification = try JSONValue(parsing: published.notification)
        #expect(notification["method"]?.stringValue == "event")
        return try #require(notification["params"])
    }

    /// Checks `params` against the catalogue: exactly the envelope and the declared fields, each
    /// of its declared schema. Returns what is wrong.
    static func problems(_ params: JSONValue) -> [String] {
        guard let type = params["type"]?.stringValue, let d = EventCatalogue.descriptor(type) else {
            return ["undeclared event type \(params["type"].map { $0.serialized() } ?? "none")"]
        }
        var out: [String] = []
        let keys = params.objectValue?.keys ?? []
        if keys != envelope + d.fieldNames { out.append("\(type): fields \(keys), declared \(envelope + d.fieldNames)") }
        out += SchemaCheck.problems(params, d.schema, at: type)
        return out
    }

    @Test func everyDeclaredEventIsCatalogued() throws {
        // Each `static let type = "…"` under Sources/Shared/RPC/Events is one event type.
        let dir = TestEnvironment.packageRoot + "/Sources/Shared/RPC/Events"
        var declared: Set<String> = []
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) {
            let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") where line.contains("static let type = \"") {
                declared.insert(String(line.split(separator: "\"")[1]))
            }
        }
        #expect(declared == EventCatalogue.types, "declared but not in EventCatalogue.all: \(declared.subtracting(EventCatalogue.types)); catalogued but not declared: \(EventCatalogue.types.subtracting(declared))")
        #expect(EventCatalogue.all.count == EventCatalogue.types.count, "an event type is listed twice")
        #expect(Set(Self.samples.map(Self.type)) == EventCatalogue.types, "this test needs one sample of each type")
        for d in EventCatalogue.all {
            #expect(d.type.wholeMatch(of: /[a-z]+\.[a-z_]+|snapshot/) != nil, "\(d.type) breaks the naming rule noun.verb_past")
            for f in d.fieldNames { #expect(f.wholeMatch(of: /[a-z][a-z_]*/) != nil, "\(d.type).\(f) is not snake_case") }
        }
    }

    @Test func publishersCannotPublishUndeclaredEvents() throws {
        // The only publish that takes a type name is internal to EventLog (for its own tests).
        let root = TestEnvironment.packageRoot + "/Sources"
        let out = try sh("grep -rn --include='*.swift' -E 'publish\\(\"' . || true", in: root)
        #expect(out.isEmpty, "events published by name, not as declared types: \(out)")
    }

    @Test func eachKindIsDeliveredWithExactlyItsDeclaredFields() throws {
        let log = EventLog()
        for sample in Self.samples {
            let params = try Self.delivered(sample, via: log)
            #expect(Self.problems(params).isEmpty, "\(Self.problems(params))")
            if sample is any RepoEvent {
                #expect(params["repo"]?.stringValue == Self.repo.path && params["uuid"]?.stringValue == Self.repo.uuid,
                        "repo is the path and uuid beside it: \(params)")
            }
        }
        // A field cannot replace the envelope: every name is declared once per event.
        #expect(EventCatalogue.all.allSatisfy { Set($0.fieldNames).isDisjoint(with: Self.envelope) })
    }

    @Test func openRPCListsEveryEventWithItsSchema() throws {
        let doc = AnnexdAPI.registry.openRPCDocument
        let listed = try #require(doc["x-events"]?["events"]?.arrayValue)
        #expect(listed.compactMap { $0["name"]?.stringValue } == EventCatalogue.all.map(\.type))
        for (entry, d) in zip(listed, EventCatalogue.all) {
            #expect(entry["params"] == d.schema, "\(d.type)'s schema in the OpenRPC document")
            #expect(entry["summary"]?.stringValue == d.summary)
        }
        #expect(doc["x-events"]?["overflow"]?["params"] == EventCatalogue.overflowSchema)
        // The committed copy and docs/API.md are regenerated by `make openrpc`.
        let committed = try JSONValue(parsing: try String(contentsOfFile: TestEnvironment.packageRoot + "/contrib/openrpc.json", encoding: .utf8))
        #expect(committed["x-events"] == doc["x-events"], "contrib/openrpc.json is out of date: run `make openrpc`")
        let page = try String(contentsOfFile: TestEnvironment.packageRoot + "/docs/API.md", encoding: .utf8)
        #expect(page == APIMarkdown.render(doc), "docs/API.md is out of date: run `make openrpc`")
        for d in EventCatalogue.all { #expect(page.contains("### `\(d.type)`")) }
        for m in AnnexdAPI.methods { #expect(page.contains("### `\(m.method)`")) }
    }

    /// A real daemon: a subscriber sees the snapshot, then one event of each kind the
    /// daemon can make here, each with exactly its declared fields.
    /// `annex-cli events` without --follow shows what is already there, then stops: the snapshot,
    /// or the kept events after --since of the --type asked for, even when the newest event is
    /// of another type (it used to wait for a matching event that might never come).
    @Test func eventsWithoutFollowShowWhatIsThereAndStop() throws {
        let d = try DaemonProcess()
        let scratch = Scratch("annexd-events-cli")
        _ = try sh("git init -q r && cd r && git annex init -q r", in: scratch.path)
        _ = try d.call("repo.add", .object(["path": .string(scratch.path + "/r")]))
        _ = try d.call("peer.invite", .object(["repo": .string(scratch.path + "/r"), "name": "nas"]))
        _ = try d.call("peer.revoke", .object(["repo": .string(scratch.path + "/r"), "name": "nas"]))
        func events(_ args: String...) throws -> [(id: Int64, type: String)] {
            let out = try d.annexCLI(["events", "--json"] + args, timeout: 10)
            #expect(out.status == 0, "\(args): \(out.stderr)")
            return out.stdout.split(separator: "\n").map {
                let e = try? JSONValue(parsing: String($0))
                return (e?["id"]?.intValue ?? -1, e?["type"]?.stringValue ?? "?")
            }
        }
        let all = try events("--since", "0")
        #expect(all.suffix(3).map(\.type) == ["repo.added", "peer.invited", "peer.revoked"], "\(all)")
        let latest = try #require(all.last?.id), added = try #require(all.first { $0.type == "repo.added" }?.id)
        #expect(try events().map(\.type) == ["snapshot"])
        #expect(try events().map(\.id) == [latest])
        #expect(try events("--since", "0", "--type", "peer.invited").map(\.type) == ["peer.invited"])
        #expect(try events("--since", "0", "--type", "repo.added", "peer.invited").map(\.type) == ["repo.added", "peer.invited"])
        #expect(try events("--since", "\(added)", "--type", "repo.added").isEmpty)
        #expect(try events("--since", "\(latest)").isEmpty)
    }

    @Test func subscriberReceivesDeclaredFieldsFromTheDaemon() throws {
        let d = try DaemonProcess(extraArguments: ["--auth-failure-delay", "0.05"])
        let scratch = Scratch("annexd-events")
        let path = scratch.path + "/r"
        _ = try sh("git init -q r && cd r && git annex init -q r", in: scratch.path)
        let sub = try d.connect()
        _ = try sub.request("events.subscribe")
        let info = try d.call("repo.add", .object(["path": .string(path)]))
        let uuid = try #require(info["uuid"]?.stringValue)
        let socket = try #require(info["socket"]?.stringValue)
        let invited = try d.call("peer.invite", .object(["repo": .string(path), "name": "nas"]))
        _ = try d.call("peer.setAccess", .object(["repo": .string(path), "name": "nas", "access": "read-only"]))
        let address = try #require(invited["address"]?.stringValue)
        let token = try #require(try TorAnnexAddress(parsing: address, token: .required).token)
        for t in [token, AuthToken.generate()] {
            let fd = try UnixSocket.connect(socket)
            _ = try? P2PClient(connection: FDConnection(readFD: fd, writeFD: fd), store: nil).connect(clientUUID: "client-uuid", token: t.value)
            close(fd)
        }
        _ = try d.call("peer.revoke", .object(["repo": .string(path), "name": "nas"]))
        _ = try d.call("repo.remove", .object(["repo": .string(path)]))

        let expected = ["snapshot", "repo.added", "peer.invited", "peer.access_changed", "peer.connected", "peer.auth_failed",
                        "peer.revoked", "repo.removed"]
        var seen: [String] = []
        while seen.count < expected.count, let line = try sub.readJSON(timeout: 30) {
            guard line["method"]?.stringValue == "event", let params = line["params"] else { continue }
            let type = params["type"]?.stringValue ?? "?"
            seen.append(type)
            #expect(Self.problems(params).isEmpty, "\(Self.problems(params))")
            if type != "snapshot" {
                #expect(params["repo"]?.stringValue == path && params["uuid"]?.stringValue == uuid, "\(params)")
            }
            // The peer is named by the invitation its token came from.
            if type == "peer.connected" { #expect(params["peer"] == "nas" && params["client_uuid"] == "client-uuid", "\(params)") }
        }
        #expect(seen == expected)
    }
}

/// The subset of JSON Schema the catalogue uses: type, enum, anyOf, items, properties,
/// required, additionalProperties.
enum SchemaCheck {
    static func problems(_ value: JSONValue, _ schema: JSONValue, at path: String) -> [String] {
        if let any = schema["anyOf"]?.arrayValue {
            return any.contains { problems(value, $0, at: path).isEmpty } ? [] : ["\(path): matches none of \(any.count) schemas"]
        }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) { return ["\(path): \(value.serialized()) not in enum"] }
        switch (schema["type"]?.stringValue, value) {
        case (nil, _), ("string"?, .string), ("boolean"?, .bool), ("integer"?, .int), ("number"?, .int), ("number"?, .double), ("null"?, .null):
            return []
        case ("array"?, .array(let items)):
            return items.enumerated().flatMap { problems($1, schema["items"] ?? [:], at: "\(path)[\($0)]") }
        case ("object"?, .object(let o)):
            let props = schema["properties"]?.objectValue ?? [:]
            var out = (schema["required"]?.arrayValue ?? []).compactMap(\.stringValue).filter { o[$0] == nil }.map { "\(path).\($0) is missing" }
            for (k, v) in o {
                if let p = props[k] { out += problems(v, p, at: "\(path).\(k)") } else if schema["additionalProperties"] == .bool(false) {
                    out.append("\(path).\(k) is not declared")
                }
            }
            return out
        default:
            return ["\(path): \(value.serialized()) is not of type \(schema["type"]!.serialized())"]
        }
    }
}
