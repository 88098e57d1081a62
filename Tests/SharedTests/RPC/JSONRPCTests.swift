import Testing
@testable import Shared

@Suite struct JSONRPCFramingTests {
    /// Echoes params for "echo", fails for "fail", counts every call.
    final class Calls: @unchecked Sendable {
        var methods: [String] = []
    }

    private func answer(_ calls: Calls) -> (RPCRequest) async -> Result<JSONValue, RPCError> {
        { request in
            calls.methods.append(request.method)
            switch request.method {
            case "echo": return .success(request.params ?? .null)
            case "subtract":
                guard let a = request.params?[0]?.intValue, let b = request.params?[1]?.intValue else {
                    return .failure(.invalidParams("need two integers"))
                }
                return .success(.int(a - b))
            case "fail": return .failure(RPCError(.busy, message: "try later", reason: "busy"))
            default: return .failure(.methodNotFound(request.method))
            }
        }
    }

    private func reply(_ text: String, limits: RPCLimits = RPCLimits(), calls: Calls = Calls()) async -> RPCReply {
        await JSONRPC.parseIncoming(text, limits: limits).reply(answer(calls))
    }

    private func singleError(_ text: String) async throws -> RPCResponse {
        guard case .single(let r) = await reply(text) else {
            Issue.record("expected one response for \(text)")
            throw RPCProtocolError("no single response")
        }
        return r
    }

    // MARK: Requests

    @Test func parsesRequestAndNotification() {
        #expect(JSONRPC.parseIncoming(#"{"jsonrpc":"2.0","method":"repo.add","params":{"path":"/r"},"id":1}"#)
            == .single(.request(RPCRequest(id: 1, method: "repo.add", params: ["path": "/r"]))))
        let n = JSONRPC.parseIncoming(#"{"jsonrpc":"2.0","method":"ping"}"#)
        #expect(n == .single(.request(RPCRequest(id: nil, method: "ping"))))
        if case .single(.request(let r)) = n { #expect(r.isNotification) }
        #expect(JSONRPC.parseIncoming(#"{"jsonrpc":"2.0","method":"m","params":[1,2],"id":"abc"}"#)
            == .single(.request(RPCRequest(id: "abc", method: "m", params: [1, 2]))))
    }

    @Test(arguments: [
        (#""s""#, RPCID.string("s")), ("7", .int(7)), ("-3", .int(-3)), ("null", .null), ("1.5", .double(1.5)),
    ])
    func idKindsAreEchoed(_ idText: String, _ id: RPCID) async {
        let r = await reply(#"{"jsonrpc":"2.0","method":"echo","params":[1],"id":"# + idText + "}")
        #expect(r == .single(RPCResponse(id: id, result: [1])))
        #expect(r.serialized() == #"{"jsonrpc":"2.0","id":"# + idText + #","result":[1]}"#)
    }

    @Test func requestSerializationRoundTrips() {
        let r = RPCRequest(id: 9, method: "transfer.get", params: ["key": "SHA256E-s1--x"])
        #expect(r.serialized() == #"{"jsonrpc":"2.0","id":9,"method":"transfer.get","params":{"key":"SHA256E-s1--x"}}"#)
        #expect(JSONRPC.parseIncoming(r.serialized()) == .single(.request(r)))
        let n = RPCRequest(id: nil, method: "ping")
        #expect(n.serialized() == #"{"jsonrpc":"2.0","method":"ping"}"#)
    }

    // MARK: Errors

    @Test func parseErrorHasNullIdAndReason() async throws {
        let r = try await singleError(#"{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]"#)
        #expect(r.id == .null)
        #expect(r.error?.code == -32700)
        #expect(r.error?.reason == "invalid_json")
        #expect(r.error?.message.hasPrefix("Parse error: ") == true)
        #expect(r.error?.data["line"] == 1)
        let text = r.serialized()
        #expect(text.hasPrefix(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: "#))
        #expect(text.contains(#""data":{"reason":"invalid_json","line":1,"column":"#))
    }

    @Test(arguments: [
        (#"{"jsonrpc":"2.0","method":"a","id":1,"id":2}"#, "duplicate_key"),
        (String(repeating: "[", count: 70) + String(repeating: "]", count: 70), "too_deep"),
        (#"{"jsonrpc":"2.0","method":"a","id":99999999999999999999}"#, "number_out_of_range"),
        ("", "invalid_json"),
    ])
    func parseErrorReasons(_ text: String, _ reason: String) async throws {
        let r = try await singleError(text)
        #expect(r.error?.code == RPCErrorCode.parseError.rawValue)
        #expect(r.error?.reason == reason)
        #expect(r.id == .null)
    }

    @Test func nonUTF8AndOversizedTextsAreParseErrors() async {
        let bad: [UInt8] = Array(#"{"jsonrpc":"2.0","method":""#.utf8) + [0xFF] + Array(#"","id":1}"#.utf8)
        let r1 = await JSONRPC.parseIncoming(bad).reply(answer(Calls()))
        #expect(r1.json?["error"]?["data"]?["reason"] == "invalid_utf8")
        let r2 = await reply(#"{"jsonrpc":"2.0","method":"echo","params":["xxxxxxxxxxxxxxxxxxxx"],"id":1}"#,
                             limits: RPCLimits(maxBytes: 32))
        #expect(r2.json?["error"]?["code"] == -32700)
        #expect(r2.json?["error"]?["data"]?["reason"] == "too_large")
    }

    @Test(arguments: [
        ("1", "not_an_object", RPCID.null),
        (#""x""#, "not_an_object", .null),
        (#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#, "invalid_method", .null),
        (#"{"jsonrpc":"2.0","method":"m","params":"bar","id":4}"#, "invalid_params_structure", .int(4)),
        (#"{"jsonrpc":"2.0","method":"m","params":3,"id":"q"}"#, "invalid_params_structure", .string("q")),
        (#"{"jsonrpc":"2.0","method":"m","params":null,"id":1}"#, "invalid_params_structure", .int(1)),
        (#"{"method":"m","id":5}"#, "invalid_version", .int(5)),
        (#"{"jsonrpc":"1.0","method":"m","id":5}"#, "invalid_version", .int(5)),
        (#"{"jsonrpc":2.0,"method":"m","id":5}"#, "invalid_version", .int(5)),
        (#"{"jsonrpc":"2.0","id":7}"#, "missing_method", .int(7)),
        (#"{"jsonrpc":"2.0","method":null,"id":7}"#, "invalid_method", .int(7)),
        (#"{"jsonrpc":"2.0","method":"m","id":true}"#, "invalid_id", .null),
        (#"{"jsonrpc":"2.0","method":"m","id":[1]}"#, "invalid_id", .null),
        (#"{"jsonrpc":"2.0","method":"m","id":{"a":1}}"#, "invalid_id", .null),
        (#"{"jsonrpc":"2.0","method":"m","parmas":{},"id":3}"#, "unknown_member", .int(3)),
        (#"{"jsonrpc":"2.0","method":"m","x":1}"#, "unknown_member", .null),
    ])
    func invalidRequests(_ text: String, _ reason: String, _ id: RPCID) async throws {
        let r = try await singleError(text)
        #expect(r.id == id)
        #expect(r.error?.code == -32600)
        #expect(r.error?.reason == reason)
        #expect(r.error?.message.hasPrefix("Invalid Request: ") == true)
    }

    @Test func invalidNotificationIsStillAnswered() async throws {
        // An invalid request without id is answered with id null (the spec's example).
        let r = try await singleError(#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#)
        #expect(r.serialized() == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: \"method\" must be a string, got an integer","data":{"reason":"invalid_method"}}}"#)
    }

    @Test func methodNotFound() async throws {
        let r = try await singleError(#"{"jsonrpc":"2.0","method":"foobar","id":"1"}"#)
        #expect(r.id == "1")
        #expect(r.error == RPCError.methodNotFound("foobar"))
        #expect(r.error?.code == -32601)
        #expect(r.error?.data == ["reason": "method_not_found", "method": "foobar"])
        #expect(r.error?.message.contains("foobar") == true)
    }

    @Test func notificationsGetNoResponseEvenWhenTheyFail() async {
        let calls = Calls()
        #expect(await reply(#"{"jsonrpc":"2.0","method":"foobar"}"#, calls: calls) == RPCReply.none)
        #expect(await reply(#"{"jsonrpc":"2.0","method":"fail","params":[]}"#, calls: calls) == RPCReply.none)
        #expect(await reply(#"{"jsonrpc":"2.0","method":"echo"}"#, calls: calls).serialized() == nil)
        #expect(calls.methods == ["foobar", "fail", "echo"])
    }

    @Test func errorCodes() {
        #expect(RPCErrorCode.allCases.map(\.rawValue) == [-32700, -32600, -32601, -32602, -32603])
        #expect(AnnexdErrorCode.notFound.rawValue == -32001)
        #expect(AnnexdErrorCode.alreadyExists.rawValue == -32002)
        #expect(AnnexdErrorCode.invalidState.rawValue == -32003)
        #expect(AnnexdErrorCode.permissionDenied.rawValue == -32004)
        #expect(AnnexdErrorCode.unavailable.rawValue == -32005)
        #expect(AnnexdErrorCode.busy.rawValue == -32006)
        #expect(AnnexdErrorCode.gitAnnexError.rawValue == -32010)
        for c in AnnexdErrorCode.allCases { #expect((-32099 ... -32000).contains(c.rawValue)) }
        #expect(Set(AnnexdErrorCode.allCases.map(\.rawValue)).count == AnnexdErrorCode.allCases.count)
    }

    @Test func everyErrorCarriesAReason() {
        let errors: [RPCError] = [
            .parseError(JSONError(kind: .invalidSyntax, message: "x")),
            .invalidRequest(reason: "not_an_object", "x"),
            .methodNotFound("m"),
            .invalidParams(JSONDecodingError(path: "params.a", problem: "expected a string", expected: "a string")),
            .invalidParams("x"),
            .internalError("boom"),
            RPCError(.notFound, message: "no repository /r", reason: "repo_not_found", details: ["path": "/r", "reason": "ignored"]),
        ]
        for e in errors {
            #expect(e.json["data"]?["reason"]?.stringValue?.isEmpty == false, "\(e)")
            #expect(e.data.keys.first == "reason")
        }
        #expect(errors.last?.reason == "repo_not_found")
        #expect(errors.last?.json.serialized()
            == #"{"code":-32001,"message":"no repository /r","data":{"reason":"repo_not_found","path":"/r"}}"#)
    }

    @Test func annexdErrorResponse() async {
        let r = await reply(#"{"jsonrpc":"2.0","method":"fail","id":2}"#)
        #expect(r.serialized() == #"{"jsonrpc":"2.0","id":2,"error":{"code":-32006,"message":"try later","data":{"reason":"busy"}}}"#)
    }

    // MARK: Batches

    @Test func specBatchExample() async {
        let text = """
            [
                {"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": "1"},
                {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
                {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
                {"foo": "boo"},
                {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
                {"jsonrpc": "2.0", "method": "echo", "id": "9"}
            ]
            """
        let calls = Calls()
        let r = await reply(text, calls: calls)
        guard case .batch(let responses) = r else {
            Issue.record("expected a batch reply, got \(r)")
            return
        }
        #expect(responses.map(\.id) == ["1", "2", .null, "5", "9"])
        #expect(responses[0].result == .success(19))
        #expect(responses[2].error?.code == -32600)
        #expect(responses[2].error?.reason == "invalid_version")
        #expect(responses[3].error?.code == -32601)
        #expect(responses[4].result == .success(.null))
        #expect(calls.methods == ["subtract", "notify_hello", "subtract", "foo.get", "echo"])
        let out = r.serialized() ?? ""
        #expect(out.hasPrefix(#"[{"jsonrpc":"2.0","id":"1","result":19},{"jsonrpc":"2.0","id":"2","result":19},"#))
    }

    @Test func batchOfNotificationsGetsNoResponse() async {
        let calls = Calls()
        let r = await reply(#"[{"jsonrpc":"2.0","method":"echo","params":[1]},{"jsonrpc":"2.0","method":"nope"}]"#, calls: calls)
        #expect(r == .none)
        #expect(r.serializedBytes() == nil)
        #expect(calls.methods == ["echo", "nope"])
    }

    @Test func emptyBatchIsOneInvalidRequest() async throws {
        let r = await reply("[]")
        guard case .single(let response) = r else {
            Issue.record("expected a single error, got \(r)")
            return
        }
        #expect(response.id == .null)
        #expect(response.error?.code == -32600)
        #expect(response.error?.reason == "empty_batch")
        #expect(r.serialized()?.hasPrefix("{") == true)
    }

    @Test func invalidBatchEntriesAreAnsweredOneByOne() async {
        let r = await reply("[1,2,3]")
        guard case .batch(let responses) = r else {
            Issue.record("expected a batch reply")
            return
        }
        #expect(responses.count == 3)
        #expect(responses.allSatisfy { $0.id == .null && $0.error?.code == -32600 && $0.error?.reason == "not_an_object" })
        #expect(await reply("[1]").json?.arrayValue?.count == 1)
    }

    @Test func batchTooLargeIsRefusedWithoutProcessing() async {
        let one = #"{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}"#
        let text = "[" + Array(repeating: one, count: 4).joined(separator: ",") + "]"
        let calls = Calls()
        let r = await reply(text, limits: RPCLimits(maxBatch: 3), calls: calls)
        guard case .single(let response) = r else {
            Issue.record("expected a single error")
            return
        }
        #expect(calls.methods.isEmpty)
        #expect(response.id == .null)
        #expect(response.error?.code == -32600)
        #expect(response.error?.reason == "batch_too_large")
        #expect(response.error?.data["limit"] == 3)
        #expect(response.error?.data["count"] == 4)
        // At the limit it is processed.
        let ok = "[" + Array(repeating: one, count: 3).joined(separator: ",") + "]"
        #expect(await reply(ok, limits: RPCLimits(maxBatch: 3)).json?.arrayValue?.count == 3)
        // The default limit is 1000.
        #expect(RPCLimits().maxBatch == 1000)
        let big = "[" + Array(repeating: "1", count: 1001).joined(separator: ",") + "]"
        #expect(await reply(big).json?["error"]?["data"]?["reason"] == "batch_too_large")
    }

    @Test func batchWithParseErrorIsOneParseError() async throws {
        let r = try await singleError(#"[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"jsonrpc":"2.0","method""#)
        #expect(r.error?.code == -32700)
    }

    // MARK: Server → client

    @Test func eventNotification() throws {
        let n = RPCNotification.event(["id": 12, "boot": "b1", "type": "transfer.progress"])
        #expect(n.serialized() == #"{"jsonrpc":"2.0","method":"event","params":{"id":12,"boot":"b1","type":"transfer.progress"}}"#)
        #expect(try RPCServerMessage(parsing: Array(n.serialized().utf8)) == .notification(n))
    }

    @Test func clientParsesResponses() throws {
        let ok = RPCResponse(id: 3, result: ["a": [1, 2]])
        #expect(try RPCServerMessage(parsing: Array(ok.serialized().utf8)) == .response(ok))
        let failed = RPCResponse(id: "x", error: RPCError(.notFound, message: "gone", reason: "repo_not_found"))
        let parsed = try RPCServerMessage(parsing: Array(failed.serialized().utf8))
        #expect(parsed == .response(failed))
        let batch = RPCReply.batch([ok, failed])
        #expect(try RPCServerMessage(parsing: batch.serializedBytes()!) == .batch([ok, failed]))
        // Another server's error without data.
        let foreign = try RPCResponse(json: JSONValue(parsing: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"m"}}"#))
        #expect(foreign.error?.reason == nil)
        #expect(foreign.error?.code == -32000)
    }

    @Test(arguments: [
        "not json", #"{"id":1,"result":1}"#, #"{"jsonrpc":"2.0","result":1}"#,
        #"{"jsonrpc":"2.0","id":1}"#, #"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#,
        #"{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}"#, "[]", "3",
    ])
    func clientRefusesMalformedServerMessages(_ text: String) {
        #expect(throws: RPCProtocolError.self) { try RPCServerMessage(parsing: Array(text.utf8)) }
    }
}
