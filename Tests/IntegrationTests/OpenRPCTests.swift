import Foundation
import Testing
@testable import AnnexdKit
import Shared

/// contrib/openrpc.json is generated from the method registry (`make openrpc`, which runs
/// `annexd openrpc`); these fail when the two drift apart, and check that `rpc.discover` on a
/// running daemon returns the same document.
@Suite(.timeLimit(minutes: 10)) struct OpenRPCTests {
    static let committedPath = TestEnvironment.packageRoot + "/contrib/openrpc.json"
    static let regenerate = "contrib/openrpc.json is out of date with the RPC method registry: run `make openrpc` and commit the result"

    func committed() throws -> (text: String, json: JSONValue) {
        let text = try #require(try? String(contentsOfFile: Self.committedPath, encoding: .utf8),
                                "\(Self.committedPath) is missing: run `make openrpc`")
        return (text, try JSONValue(parsing: text))
    }

    /// What differs between two OpenRPC documents, in a line (the documents are long).
    static func difference(_ a: JSONValue, _ b: JSONValue) -> String {
        func methods(_ d: JSONValue) -> [String: JSONValue] {
            Dictionary((d["methods"]?.arrayValue ?? []).map { ($0["name"]?.stringValue ?? "?", $0) }, uniquingKeysWith: { x, _ in x })
        }
        let (ma, mb) = (methods(a), methods(b))
        let changed = Set(ma.keys).union(mb.keys).filter { ma[$0] != mb[$0] }.sorted()
        return changed.isEmpty ? "info or openrpc version differ" : "methods differing: " + changed.joined(separator: ", ")
    }

    @Test func committedDocumentMatchesTheRegistry() throws {
        let (text, json) = try committed()
        let registry = AnnexdAPI.registry.openRPCDocument
        let same = json == registry
        #expect(same, "\(Self.regenerate) (\(Self.difference(json, registry)))")
        // Byte for byte what `annexd openrpc` prints (the same members in the same order).
        let r = try DaemonProcess.run([TestEnvironment.annexd, "openrpc"])
        #expect(r.status == 0, "annexd openrpc failed: \(r.stderr)")
        let printed = try JSONValue(parsing: r.stdout)
        let printedSame = printed == registry
        #expect(printedSame, "`annexd openrpc` (\(TestEnvironment.annexd)) is not built from these sources: \(Self.difference(printed, registry))")
        let sameText = r.stdout == text
        #expect(sameText, "\(Self.regenerate) (the text differs)")
        // Every method is in it, in name order.
        let names = json["methods"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(names == AnnexdAPI.registry.methodNames)
        #expect(Set(names).isSuperset(of: AnnexdAPI.methods.map { $0.method } + ["rpc.discover"]))
    }

    @Test func rpcDiscoverReturnsTheCommittedDocument() throws {
        let d = try DaemonProcess()
        let discovered = try d.call("rpc.discover")
        let registry = AnnexdAPI.registry.openRPCDocument
        let sameAsRegistry = discovered == registry
        #expect(sameAsRegistry, "the daemon serves other methods than AnnexdAPI.methods: \(Self.difference(discovered, registry))")
        let committed = try committed().json
        let sameAsCommitted = discovered == committed
        #expect(sameAsCommitted, "\(Self.regenerate) (\(Self.difference(discovered, committed)))")
    }
}
