import Testing
@testable import Shared

// Two example methods, written the way the daemon's methods are.

struct RepoInfo: RPCResultConvertible, Equatable {
    var path: String
    var name: String?
    var peers: Int

    init(path: String, name: String?, peers: Int) {
        self.path = path
        self.name = name
        self.peers = peers
    }

    init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        path = try r.required("path")
        name = try r.optional("name")
        peers = try r.required("peers")
        try r.finish()
    }

    var json: JSONValue { .object(JSONObject(["path": path.json, "name": name?.json, "peers": peers.json])) }

    static let schema = JSONSchema.object([
        .property("path", String.self, "Absolute path of the repository"),
        .property("name", String.self, required: false),
        .property("peers", Int.self),
    ])
}

enum TestRepoAdd: RPCMethod {
    static let method = "repo.add"
    static let summary = "Register a repository and serve it"

    struct Params: RPCParams, Equatable {
        var path: String
        var name: String?
        var tags: [String]
        var limit: Int

        init(path: String, name: String? = nil, tags: [String] = [], limit: Int = 10) {
            self.path = path
            self.name = name
            self.tags = tags
            self.limit = limit
        }

        init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            path = try r.required("path")
            name = try r.optional("name")
            tags = try r.optional("tags", default: [])
            limit = try r.optional("limit", default: 10)
            try r.finish()
            if !path.hasPrefix("/") {
                throw RPCError.invalidParams(reason: "relative_path", "params.path: must be an absolute path, got \(path)")
            }
        }

        var json: JSONValue {
            .object(JSONObject(["path": path.json, "name": name?.json, "tags": tags.json, "limit": limit.json]))
        }

        static let schema = JSONSchema.object([
            .property("path", String.self, "Absolute path of the repository"),
            .property("name", String.self, required: false, "A name for humans"),
            .property("tags", [String].self, required: false),
            .property("limit", Int.self, required: false),
        ])
    }

    typealias Result = RepoInfo
}

enum TestPing: RPCMethod {
    static let method = "daemon.ping"
    static let summary = "Checks that the daemon answers"
    typealias Result = RPCEmptyResult
}

struct Caller: Sendable { var uid: Int }

@Suite struct RPCMethodTests {
    struct Boom: Error {}

    private func dispatcher() -> RPCDispatcher<Caller> {
        var d = RPCDispatcher<Caller>(version: "0.1.0")
        d.register(TestRepoAdd.self) { params, caller in
            if params.path == "/boom" { throw Boom() }
            if params.path == "/exists" {
                throw RPCError(.alreadyExists, message: "/exists is registered already", reason: "repo_exists",
                               details: ["path": "/exists"])
            }
            return RepoInfo(path: params.path, name: params.name, peers: caller.uid)
        }
        d.register(TestPing.self) { _, _ in RPCEmptyResult() }
        return d
    }

    private func call(_ method: String, _ params: JSONValue?, id: RPCID = 1) async -> RPCResponse? {
        let text = RPCRequest(id: id, method: method, params: params).serialized()
        guard case .single(let r) = await dispatcher().reply(toText: Array(text.utf8), context: Caller(uid: 1000)) else {
            return nil
        }
        return r
    }

    private func paramsError(_ params: JSONValue?) async -> RPCError? {
        await call("repo.add", params)?.error
    }

    // MARK: Dispatch

    @Test func dispatchesTypedParamsAndResult() async throws {
        let r = try #require(await call("repo.add", ["path": "/r", "name": "photos"]))
        #expect(r.result == .success(["path": "/r", "name": "photos", "peers": 1000]))
        #expect(r.serialized() == #"{"jsonrpc":"2.0","id":1,"result":{"path":"/r","name":"photos","peers":1000}}"#)
        let info = try TestRepoAdd.result(from: r)
        #expect(info == RepoInfo(path: "/r", name: "photos", peers: 1000))
    }

    @Test func clientHelpersBuildRequests() {
        let req = TestRepoAdd.request(id: 4, .init(path: "/r", tags: ["a"]))
        #expect(req.serialized() == #"{"jsonrpc":"2.0","id":4,"method":"repo.add","params":{"path":"/r","tags":["a"],"limit":10}}"#)
        #expect(TestPing.request(id: nil, RPCNoParams()).serialized() == #"{"jsonrpc":"2.0","method":"daemon.ping"}"#)
        #expect(throws: RPCError.self) {
            try TestRepoAdd.result(from: RPCResponse(id: 1, error: .methodNotFound("repo.add")))
        }
        #expect(throws: JSONDecodingError(path: "result.peers", problem: "is required (expected an integer)",
                                          expected: "an integer")) {
            try TestRepoAdd.result(from: RPCResponse(id: 1, result: ["path": "/r"]))
        }
    }

    @Test func paramsRoundTrip() throws {
        let p = TestRepoAdd.Params(path: "/x", name: "n", tags: ["a", "b"], limit: 3)
        #expect(try TestRepoAdd.Params(json: p.json) == p)
        #expect(try TestRepoAdd.Params(json: ["path": "/x", "name": .null]) == TestRepoAdd.Params(path: "/x"))
    }

    @Test func noParamsAcceptsAbsentEmptyObjectAndEmptyArray() async throws {
        for params: JSONValue? in [nil, [:], []] {
            let r = try #require(await call("daemon.ping", params))
            #expect(r.result == .success([:]), "\(String(describing: params))")
        }
        let e = await call("daemon.ping", ["x": 1])?.error
        #expect(e?.code == -32602)
        #expect(e?.message == "params.x: unknown member (allowed: none)")
    }

    @Test func handlerErrors() async {
        let exists = await call("repo.add", ["path": "/exists"])?.error
        #expect(exists?.code == -32002)
        #expect(exists?.data == ["reason": "repo_exists", "path": "/exists"])
        let boom = await call("repo.add", ["path": "/boom"])?.error
        #expect(boom?.code == -32603)
        #expect(boom?.reason == "internal_error")
        #expect(await call("repo.remove", ["path": "/r"])?.error?.code == -32601)
    }

    @Test func notificationsRunButGetNoResponse() async {
        let text = TestPing.request(id: nil, RPCNoParams()).serialized()
        #expect(await dispatcher().reply(toText: Array(text.utf8), context: Caller(uid: 0)) == .none)
    }

    // MARK: Invalid params name the field

    @Test(arguments: [
        (["path": 5], "params.path: expected a string, got an integer", "params.path"),
        ([:], "params.path: is required (expected a string)", "params.path"),
        (["path": .null], "params.path: expected a string, got null", "params.path"),
        (["path": "/r", "name": ["x"]], "params.name: expected a string, got an array", "params.name"),
        (["path": "/r", "tags": "a"], "params.tags: expected an array of strings, got a string", "params.tags"),
        (["path": "/r", "tags": ["a", 2]], "params.tags[1]: expected a string, got an integer", "params.tags[1]"),
        (["path": "/r", "limit": 1.5], "params.limit: expected an integer, got a number", "params.limit"),
        (["path": "/r", "colour": "red"], "params.colour: unknown member (allowed: path, name, tags, limit)", "params.colour"),
        (["path": "/r", "odd key": 1], #"params["odd key"]: unknown member (allowed: path, name, tags, limit)"#, #"params["odd key"]"#),
        ([1, 2], "params: expected an object (parameters are passed by name), got an array", "params"),
    ] as [(JSONValue, String, String)])
    func invalidParamsNameTheField(_ params: JSONValue, _ message: String, _ field: String) async throws {
        let e = try #require(await paramsError(params))
        #expect(e.code == -32602)
        #expect(e.reason == "invalid_params")
        #expect(e.message == message)
        #expect(e.data["field"] == .string(field))
    }

    @Test func absentParamsForAMethodThatNeedsThem() async throws {
        let e = try #require(await paramsError(nil))
        #expect(e.message == "params.path: is required (expected a string)")
        #expect(e.data["expected"] == "a string")
    }

    @Test func paramsValidationCanPickItsOwnReason() async throws {
        let e = try #require(await paramsError(["path": "relative"]))
        #expect(e.code == -32602)
        #expect(e.reason == "relative_path")
    }

    // MARK: OpenRPC

    @Test func openRPCDocument() throws {
        let registry = MethodRegistry(version: "0.1.0", methods: [TestRepoAdd.self, TestPing.self])
        #expect(registry.methodNames == ["daemon.ping", "repo.add", "rpc.discover"])
        let doc = registry.openRPCDocument
        #expect(doc["openrpc"] == "1.3.2")
        #expect(doc["info"] == ["title": "annexd", "version": "0.1.0"])
        let methods = try #require(doc["methods"]?.arrayValue)
        #expect(methods.compactMap { $0["name"]?.stringValue } == ["daemon.ping", "repo.add", "rpc.discover"])

        let add = methods[1]
        #expect(add["summary"] == "Register a repository and serve it")
        #expect(add["paramStructure"] == "by-name")
        #expect(add["params"] == [
            ["name": "path", "description": "Absolute path of the repository", "required": true,
             "schema": ["type": "string", "description": "Absolute path of the repository"]],
            ["name": "name", "description": "A name for humans", "required": false,
             "schema": ["type": "string", "description": "A name for humans"]],
            ["name": "tags", "required": false, "schema": ["type": "array", "items": ["type": "string"]]],
            ["name": "limit", "required": false, "schema": ["type": "integer"]],
        ])
        #expect(add["params"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["path", "name", "tags", "limit"])
        #expect(add["result"]?["name"] == "result")
        #expect(add["result"]?["schema"] == RepoInfo.schema)
        #expect(RepoInfo.schema["required"] == ["path", "peers"])
        #expect(RepoInfo.schema["additionalProperties"] == false)

        let ping = methods[0]
        #expect(ping["params"] == [])
        #expect(ping["result"]?["schema"] == ["type": "object", "properties": [:], "additionalProperties": false])

        let discover = methods[2]
        #expect(discover["result"]?["name"] == "OpenRPC Schema")
        #expect(discover["result"]?["schema"]?["$ref"] != nil)
    }

    @Test func openRPCDocumentIsDeterministic() {
        let a = MethodRegistry(version: "1", methods: [TestRepoAdd.self, TestPing.self])
        var b = MethodRegistry(version: "1")
        b.add(TestPing.self)
        b.add(TestRepoAdd.self)
        #expect(a.openRPCDocument.serialized() == b.openRPCDocument.serialized())
        #expect(a.openRPCDocument.serialized() == a.openRPCDocument.serialized())
        let text = a.openRPCDocument.serialized()
        #expect(text.hasPrefix(#"{"openrpc":"1.3.2","info":{"title":"annexd","version":"1"},"methods":[{"name":"daemon.ping","#))
        // The document parses back within the default limits.
        #expect((try? JSONValue(parsing: text)) == a.openRPCDocument)
    }

    @Test func rpcDiscoverIsBuiltIn() async throws {
        let d = dispatcher()
        let r = try #require(await call("rpc.discover", nil))
        #expect(r.result == .success(d.registry.openRPCDocument))
        let doc = try RPCDiscover.result(from: r)
        #expect(doc.json["methods"]?.arrayValue?.count == 3)
        #expect(await call("rpc.discover", ["x": 1])?.error?.code == -32602)
        #expect(MethodRegistry(version: "1").methodNames == ["rpc.discover"])
    }

    // MARK: Basic conversions

    @Test func basicConversions() throws {
        #expect(try String(json: "a") == "a")
        #expect(try Int(json: 3) == 3)
        #expect(try Int64(json: -3) == -3)
        #expect(try Double(json: 3) == 3)
        #expect(try Double(json: 0.5) == 0.5)
        #expect(try Bool(json: true))
        #expect(try [Int](json: [1, 2]) == [1, 2])
        #expect(try [String?](json: ["a", .null]) == ["a", nil])
        #expect(try JSONObject(json: ["a": 1]) == ["a": 1])
        #expect(throws: JSONDecodingError(path: "value", problem: "expected a boolean, got a string", expected: "a boolean")) {
            try Bool(json: "true")
        }
        #expect([String?].schema == ["type": "array", "items": ["anyOf": [["type": "string"], ["type": "null"]]]])
        #expect(jsonPath("params", key: "a_b-c1") == "params.a_b-c1")
        #expect(jsonPath("params", key: "a.b") == #"params["a.b"]"#)
        #expect(jsonPath("params", key: "") == #"params[""]"#)
        #expect(JSONSchema.stringEnum(["full", "read-only"], description: "access")
            == ["type": "string", "enum": ["full", "read-only"], "description": "access"])
    }
}
