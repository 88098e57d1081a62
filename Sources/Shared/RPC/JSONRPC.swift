/// JSON-RPC 2.0 framing (https://www.jsonrpc.org/specification), with no I/O: a text in,
/// requests or ready-made error responses out; responses and notifications to text.
///
/// annexd's conventions on top of the spec: every error carries `data.reason`, a machine-readable
/// snake_case word (plus details); request objects may hold only `jsonrpc`, `method`, `params`
/// and `id`; a batch is bounded; JSON texts are bounded in size and depth (see `RPCLimits`).
public enum JSONRPC {
    public static let version = "2.0"

    /// Parses one incoming text (a line from the socket) into a request, an invalid entry
    /// with its error response, or a batch of those. Never throws: a text that is not JSON
    /// becomes a -32700 error response with id null.
    public static func parseIncoming(_ bytes: some Collection<UInt8>, limits: RPCLimits = RPCLimits()) -> RPCIncoming {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes, maxBytes: limits.maxBytes, maxDepth: limits.maxDepth)
        } catch {
            return .single(.invalid(RPCResponse(id: .null, error: .parseError(error))))
        }
        return incoming(from: value, limits: limits)
    }

    public static func parseIncoming(_ text: String, limits: RPCLimits = RPCLimits()) -> RPCIncoming {
        parseIncoming(Array(text.utf8), limits: limits)
    }

    /// Classifies an already parsed value as a single request or a batch.
    public static func incoming(from value: JSONValue, limits: RPCLimits = RPCLimits()) -> RPCIncoming {
        guard case .array(let items) = value else { return .single(entry(from: value)) }
        if items.isEmpty {
            return .single(.invalid(RPCResponse(id: .null, error: .invalidRequest(
                reason: "empty_batch", "a batch must hold at least one request"))))
        }
        if items.count > limits.maxBatch {
            return .single(.invalid(RPCResponse(id: .null, error: .invalidRequest(
                reason: "batch_too_large",
                "a batch may hold at most \(limits.maxBatch) requests, this one has \(items.count); send smaller batches",
                details: ["limit": .int(Int64(limits.maxBatch)), "count": .int(Int64(items.count))]))))
        }
        return .batch(items.map(entry(from:)))
    }

    static func isRequestMember(_ key: String) -> Bool {
        switch key {
        case "jsonrpc", "method", "params", "id": true
        default: false
        }
    }

    /// Validates one request object. An invalid one is answered with its id when that id was valid.
    public static func entry(from value: JSONValue) -> RPCEntry {
        func invalid(_ id: RPCID, _ reason: String, _ message: String, _ details: JSONObject = [:]) -> RPCEntry {
            .invalid(RPCResponse(id: id, error: .invalidRequest(reason: reason, message, details: details)))
        }
        guard case .object(let object) = value else {
            return invalid(.null, "not_an_object", "a request must be a JSON object, got \(value.kindDescription)")
        }
        var id: RPCID?
        if let idValue = object["id"] {
            guard let valid = RPCID(json: idValue) else {
                return invalid(.null, "invalid_id", "\"id\" must be a string, a number or null, got \(idValue.kindDescription)")
            }
            id = valid
        }
        let replyID = id ?? .null
        guard let version = object["jsonrpc"] else {
            return invalid(replyID, "invalid_version", "\"jsonrpc\" is missing; it must be \"2.0\"")
        }
        guard version == .string(Self.version) else {
            return invalid(replyID, "invalid_version", "\"jsonrpc\" must be \"2.0\", got \(version.serialized())")
        }
        guard let methodValue = object["method"] else {
            return invalid(replyID, "missing_method", "\"method\" is missing")
        }
        guard case .string(let method) = methodValue else {
            return invalid(replyID, "invalid_method", "\"method\" must be a string, got \(methodValue.kindDescription)")
        }
        let params = object["params"]
        switch params {
        case nil, .array?, .object?: break
        case let other?:
            return invalid(replyID, "invalid_params_structure",
                           "\"params\" must be an object or an array, got \(other.kindDescription)")
        }
        if let unknown = object.first(where: { !isRequestMember($0.key) })?.key {
            return invalid(replyID, "unknown_member",
                           "request member \"\(unknown)\" is not part of JSON-RPC 2.0 (allowed: jsonrpc, method, params, id)",
                           ["member": .string(unknown)])
        }
        return .request(RPCRequest(id: id, method: method, params: params))
    }
}

/// Bounds on incoming texts.
public struct RPCLimits: Sendable, Equatable {
    public var maxBytes: Int
    public var maxDepth: Int
    public var maxBatch: Int

    public init(maxBytes: Int = JSONValue.defaultMaxBytes, maxDepth: Int = JSONValue.defaultMaxDepth,
                maxBatch: Int = 1000)
    {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxBatch = maxBatch
    }
}

// MARK: - Ids

/// A request id: a string, a number or null.
public enum RPCID: Hashable, Sendable, CustomStringConvertible {
    case int(Int64)
    /// Allowed by the spec ("SHOULD NOT contain fractional parts"), echoed back as received.
    case double(Double)
    case string(String)
    case null

    public init?(json: JSONValue) {
        switch json {
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .null: self = .null
        default: return nil
        }
    }

    public var json: JSONValue {
        switch self {
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        case .string(let s): .string(s)
        case .null: .null
        }
    }

    public var description: String { json.serialized() }
}

extension RPCID: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(stringLiteral value: String) { self = .string(value) }
}

// MARK: - Errors

/// The error codes the JSON-RPC 2.0 spec defines.
public enum RPCErrorCode: Int, Sendable, CaseIterable {
    case parseError = -32700
    case invalidRequest = -32600
    case methodNotFound = -32601
    case invalidParams = -32602
    case internalError = -32603
}

/// annexd's own error codes, in the spec's server-error range -32000...-32099.
public enum AnnexdErrorCode: Int, Sendable, CaseIterable {
    /// The repository, peer, transfer, … named does not exist.
    case notFound = -32001
    /// The thing to create exists already.
    case alreadyExists = -32002
    /// Not possible in the current state (e.g. pairing not started, repository not served).
    case invalidState = -32003
    case permissionDenied = -32004
    /// A dependency is not there (tor not bootstrapped, peer unreachable).
    case unavailable = -32005
    /// Try again later (a conflicting operation is running).
    case busy = -32006
    /// git or git-annex failed; data carries its exit status and stderr.
    case gitAnnexError = -32010
}

/// An error object. `data` is always an object with a `reason` (machine-readable snake_case)
/// and whatever details help a client; `message` says what was wrong and what to do.
public struct RPCError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONObject

    /// An error with `data = {"reason": reason, ...details}`.
    public init(code: Int, message: String, reason: String, details: JSONObject = [:]) {
        self.code = code
        self.message = message
        var data: JSONObject = ["reason": .string(reason)]
        for (k, v) in details where k != "reason" { data[k] = v }
        self.data = data
    }

    public init(_ code: RPCErrorCode, message: String, reason: String, details: JSONObject = [:]) {
        self.init(code: code.rawValue, message: message, reason: reason, details: details)
    }

    public init(_ code: AnnexdErrorCode, message: String, reason: String, details: JSONObject = [:]) {
        self.init(code: code.rawValue, message: message, reason: reason, details: details)
    }

    /// As received from a peer: `data` kept when it is an object, else under `value`.
    init(code: Int, message: String, receivedData: JSONValue?) {
        self.code = code
        self.message = message
        switch receivedData {
        case .object(let o)?: data = o
        case nil, .null?: data = [:]
        case let other?: data = ["value": other]
        }
    }

    public var reason: String? { data["reason"]?.stringValue }

    public var json: JSONValue {
        ["code": .int(Int64(code)), "message": .string(message), "data": .object(data)]
    }

    public var description: String { "\(message) (\(code), \(reason ?? "no reason"))" }

    // The spec's errors.

    /// -32700, for a text that is not (acceptable) JSON; data.reason is the JSONError kind
    /// (invalid_json, invalid_utf8, duplicate_key, number_out_of_range, too_deep, too_large).
    public static func parseError(_ error: JSONError) -> RPCError {
        var details: JSONObject = [:]
        if error.line > 0 {
            details["line"] = .int(Int64(error.line))
            details["column"] = .int(Int64(error.column))
        }
        return RPCError(.parseError, message: "Parse error: \(error.message)", reason: error.kind.rawValue,
                        details: details)
    }

    /// -32600, for JSON that is not a valid request.
    public static func invalidRequest(reason: String, _ detail: String, details: JSONObject = [:]) -> RPCError {
        RPCError(.invalidRequest, message: "Invalid Request: \(detail)", reason: reason, details: details)
    }

    /// -32601, reason method_not_found.
    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(.methodNotFound, message: "Method not found: \"\(method)\" (rpc.discover lists the methods)",
                 reason: "method_not_found", details: ["method": .string(method)])
    }

    /// -32602, reason invalid_params, for params that do not decode; the message names the field.
    public static func invalidParams(_ error: JSONDecodingError) -> RPCError {
        var details: JSONObject = ["field": .string(error.path)]
        if let expected = error.expected { details["expected"] = .string(expected) }
        return RPCError(.invalidParams, message: error.description, reason: "invalid_params", details: details)
    }

    /// -32602 for params that decode but make no sense; pick a specific reason.
    public static func invalidParams(reason: String = "invalid_params", _ message: String,
                                     details: JSONObject = [:]) -> RPCError
    {
        RPCError(.invalidParams, message: message, reason: reason, details: details)
    }

    /// -32603, reason internal_error.
    public static func internalError(_ message: String, details: JSONObject = [:]) -> RPCError {
        RPCError(.internalError, message: "Internal error: \(message)", reason: "internal_error", details: details)
    }
}

// MARK: - Messages

/// A request, or a notification when `id` is nil.
public struct RPCRequest: Equatable, Sendable {
    public var id: RPCID?
    public var method: String
    /// An object or an array; nil when absent.
    public var params: JSONValue?

    public init(id: RPCID?, method: String, params: JSONValue? = nil) {
        self.id = id
        self.method = method
        self.params = params
    }

    public var isNotification: Bool { id == nil }

    public var json: JSONValue {
        var o: JSONObject = ["jsonrpc": .string(JSONRPC.version)]
        if let id { o["id"] = id.json }
        o["method"] = .string(method)
        if let params { o["params"] = params }
        return .object(o)
    }

    public func serialized() -> String { json.serialized() }
}

/// The answer to one request.
public struct RPCResponse: Equatable, Sendable {
    public var id: RPCID
    public var result: Result<JSONValue, RPCError>

    public init(id: RPCID, result: Result<JSONValue, RPCError>) {
        self.id = id
        self.result = result
    }

    public init(id: RPCID, result: JSONValue) { self.init(id: id, result: .success(result)) }
    public init(id: RPCID, error: RPCError) { self.init(id: id, result: .failure(error)) }

    public var error: RPCError? { if case .failure(let e) = result { e } else { nil } }

    /// `{"jsonrpc":"2.0","id":…,"result":…}` or `{"jsonrpc":"2.0","id":…,"error":{code,message,data}}`.
    public var json: JSONValue {
        var o: JSONObject = ["jsonrpc": .string(JSONRPC.version), "id": id.json]
        switch result {
        case .success(let value): o["result"] = value
        case .failure(let error): o["error"] = error.json
        }
        return .object(o)
    }

    public func serialized() -> String { String(decoding: serializedBytes(), as: UTF8.self) }

    /// The text of `json`, written without building it first (a server writes one per request).
    public func serializedBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    func write(to out: inout [UInt8]) {
        JSONWriter.append(#"{"jsonrpc":"2.0","id":"#, to: &out)
        JSONWriter.write(id.json, to: &out)
        switch result {
        case .success(let value):
            JSONWriter.append(#","result":"#, to: &out)
            JSONWriter.write(value, to: &out)
        case .failure(let error):
            JSONWriter.append(#","error":"#, to: &out)
            JSONWriter.write(error.json, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// A response as a client receives it.
    public init(json: JSONValue) throws(RPCProtocolError) {
        guard case .object(let o) = json else { throw RPCProtocolError("a response must be an object, got \(json.kindDescription)") }
        guard o["jsonrpc"] == .string(JSONRPC.version) else { throw RPCProtocolError("response without \"jsonrpc\": \"2.0\"") }
        guard let idValue = o["id"], let id = RPCID(json: idValue) else {
            throw RPCProtocolError("response without a valid \"id\"")
        }
        switch (o["result"], o["error"]) {
        case (let value?, nil):
            self.init(id: id, result: value)
        case (nil, .object(let e)?):
            guard case .int(let code)? = e["code"], case .string(let message)? = e["message"] else {
                throw RPCProtocolError("response error without an integer \"code\" and a string \"message\"")
            }
            self.init(id: id, error: RPCError(code: Int(code), message: message, receivedData: e["data"]))
        default:
            throw RPCProtocolError("a response must hold exactly one of \"result\" and an \"error\" object")
        }
    }
}

/// A notification from the server to the client, such as an event on a subscription.
public struct RPCNotification: Equatable, Sendable {
    public var method: String
    public var params: JSONValue?

    public init(method: String, params: JSONValue? = nil) {
        self.method = method
        self.params = params
    }

    /// The event stream's notification: `{"jsonrpc":"2.0","method":"event","params":{…}}`.
    public static let eventMethod = "event"
    public static func event(_ params: JSONObject) -> RPCNotification {
        RPCNotification(method: eventMethod, params: .object(params))
    }

    public var json: JSONValue {
        var o: JSONObject = ["jsonrpc": .string(JSONRPC.version), "method": .string(method)]
        if let params { o["params"] = params }
        return .object(o)
    }

    public func serialized() -> String { json.serialized() }
}

/// One incoming text, classified.
public enum RPCIncoming: Equatable, Sendable {
    /// One request, or one error to send back alone (not JSON, an empty batch, a batch too large,
    /// an invalid request object).
    case single(RPCEntry)
    /// A non-empty batch within bounds; its reply is an array (or nothing at all).
    case batch([RPCEntry])

    public var entries: [RPCEntry] {
        switch self {
        case .single(let e): [e]
        case .batch(let es): es
        }
    }

    /// The reply: `answer` is called for every valid request in order, notifications included
    /// (whose answers are dropped); invalid entries are answered with their error.
    public func reply(_ answer: (RPCRequest) async -> Result<JSONValue, RPCError>) async -> RPCReply {
        var responses: [RPCResponse] = []
        for entry in entries {
            switch entry {
            case .invalid(let response):
                responses.append(response)
            case .request(let request):
                let outcome = await answer(request)
                if let id = request.id { responses.append(RPCResponse(id: id, result: outcome)) }
            }
        }
        switch self {
        case .single: return responses.first.map(RPCReply.single) ?? .none
        case .batch: return responses.isEmpty ? .none : .batch(responses)
        }
    }
}

public enum RPCEntry: Equatable, Sendable {
    case request(RPCRequest)
    /// Not a valid request: send this error response.
    case invalid(RPCResponse)
}

/// What to send back for one incoming text.
public enum RPCReply: Equatable, Sendable {
    /// Nothing: a notification, or a batch of notifications.
    case none
    case single(RPCResponse)
    case batch([RPCResponse])

    public var json: JSONValue? {
        switch self {
        case .none: nil
        case .single(let r): r.json
        case .batch(let rs): .array(rs.map(\.json))
        }
    }

    /// The compact text to send (no newline added), or nil when nothing is sent.
    public func serializedBytes() -> [UInt8]? {
        switch self {
        case .none: return nil
        case .single(let r): return r.serializedBytes()
        case .batch(let rs):
            var out: [UInt8] = [UInt8(ascii: "[")]
            for (i, r) in rs.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                r.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
            return out
        }
    }
    public func serialized() -> String? { serializedBytes().map { String(decoding: $0, as: UTF8.self) } }
}

// MARK: - Client side

/// A message from the server that breaks JSON-RPC 2.0.
public struct RPCProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a client reads from the server: a response, a batch of responses, or a notification.
public enum RPCServerMessage: Equatable, Sendable {
    case response(RPCResponse)
    case batch([RPCResponse])
    case notification(RPCNotification)

    public init(parsing bytes: some Collection<UInt8>, maxBytes: Int = 64 << 20,
                maxDepth: Int = JSONValue.defaultMaxDepth) throws(RPCProtocolError)
    {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes, maxBytes: maxBytes, maxDepth: maxDepth)
        } catch {
            throw RPCProtocolError("the server sent invalid JSON: \(error.message)")
        }
        try self.init(json: value)
    }

    public init(json: JSONValue) throws(RPCProtocolError) {
        switch json {
        case .array(let items):
            guard !items.isEmpty else { throw RPCProtocolError("the server sent an empty batch") }
            var responses: [RPCResponse] = []
            for item in items { responses.append(try RPCResponse(json: item)) }
            self = .batch(responses)
        case .object(let o) where o["id"] == nil && o["method"] != nil:
            guard o["jsonrpc"] == .string(JSONRPC.version), case .string(let method)? = o["method"] else {
                throw RPCProtocolError("malformed notification from the server")
            }
            self = .notification(RPCNotification(method: method, params: o["params"]))
        default:
            self = .response(try RPCResponse(json: json))
        }
    }
}
