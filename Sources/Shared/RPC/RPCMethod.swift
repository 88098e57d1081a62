/// Requests as types, as in sourcekit-lsp: each RPC method is a type naming its method, a
/// one-line summary, its params type and its result type. Params and results convert from
/// and to `JSONValue` by hand (`JSONObjectReader` makes that short) and describe their JSON
/// Schema, from which `MethodRegistry` writes the OpenRPC document.
///
/// ```swift
/// struct RepoAdd: RPCMethod {
///     static let method = "repo.add"
///     static let summary = "Register a repository and serve it"
///     struct Params: RPCParams {
///         var path: String
///         var name: String?
///         init(path: String, name: String? = nil) { self.path = path; self.name = name }
///         init(json: JSONValue, path at: String) throws {
///             var r = try JSONObjectReader(json, path: at)
///             path = try r.required("path")
///             name = try r.optional("name")
///             try r.finish()
///         }
///         var json: JSONValue { JSONObject(["path": path.json, "name": name?.json]).json }
///         static let schema = JSONSchema.object([
///             .property("path", String.self, "Absolute path of the repository"),
///             .property("name", String.self, required: false),
///         ])
///     }
///     typealias Result = RepoInfo
/// }
/// ```
public protocol RPCMethod {
    /// `RPCNoParams` unless the method says otherwise.
    associatedtype Params: RPCParams = RPCNoParams
    associatedtype Result: RPCResultConvertible
    /// `noun.verb`, e.g. `repo.add`.
    static var method: String { get }
    /// One line for the OpenRPC document and the CLI's help.
    static var summary: String { get }
    /// The name of the result's content descriptor in the OpenRPC document ("result" by default).
    static var resultName: String { get }
}

extension RPCMethod {
    public static var resultName: String { "result" }

    /// A request for this method (a notification when `id` is nil); empty params are left out.
    public static func request(id: RPCID?, _ params: Params) -> RPCRequest {
        let json = params.json
        let omit = json.objectValue?.isEmpty ?? false
        return RPCRequest(id: id, method: method, params: omit ? nil : json)
    }

    /// The typed result of a response to this method. Throws the response's `RPCError`, or a
    /// `JSONDecodingError` (path `result…`) when the result does not match.
    public static func result(from response: RPCResponse) throws -> Result {
        switch response.result {
        case .success(let value): return try Result(json: value, path: "result")
        case .failure(let error): throw error
        }
    }
}

/// A value that converts from and to JSON and describes its JSON Schema.
///
/// `init(json:path:)` should throw `JSONDecodingError` naming the offending field (`path` is
/// where this value sits, e.g. `params.paths[2]`); a server answers those with -32602. It may
/// also throw an `RPCError`, which is sent as is.
public protocol JSONRepresentable: Sendable {
    init(json: JSONValue, path: String) throws
    var json: JSONValue { get }
    static var schema: JSONValue { get }
    /// For error messages: "a string", "an integer", … (derived from `schema` by default).
    static var jsonTypeDescription: String { get }
}

extension JSONRepresentable {
    public init(json: JSONValue) throws { try self.init(json: json, path: "value") }

    public static var jsonTypeDescription: String {
        switch schema["type"]?.stringValue {
        case "string": "a string"
        case "integer": "an integer"
        case "number": "a number"
        case "boolean": "a boolean"
        case "array": "an array"
        case "object": "an object"
        case "null": "null"
        default: "a valid value"
        }
    }
}

/// A method's params: a JSON object (annexd takes parameters by name), whose `schema` is an
/// object schema (see `JSONSchema.object`); its properties become the OpenRPC params.
public protocol RPCParams: JSONRepresentable {}

/// A method's result.
public protocol RPCResultConvertible: JSONRepresentable {}

// MARK: - Decoding errors

/// A JSON value that does not have the expected shape, with the path of the offending field.
public struct JSONDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Where: `params.path`, `params.paths[2]`, `result.repos[0].uuid`.
    public var path: String
    /// What: "expected a string, got an integer", "is required (expected a string)".
    public var problem: String
    /// The expected type, when the problem is a type mismatch or a missing field.
    public var expected: String?

    public init(path: String, problem: String, expected: String? = nil) {
        self.path = path
        self.problem = problem
        self.expected = expected
    }

    /// "params.path: expected a string, got an integer".
    public var description: String { "\(path): \(problem)" }

    public static func typeMismatch(path: String, expected: String, got value: JSONValue) -> JSONDecodingError {
        JSONDecodingError(path: path, problem: "expected \(expected), got \(value.kindDescription)", expected: expected)
    }

    public static func missing(path: String, expected: String) -> JSONDecodingError {
        JSONDecodingError(path: path, problem: "is required (expected \(expected))", expected: expected)
    }
}

/// The path of member `key` under `base`: `params.path`, or `params["odd key"]`.
public func jsonPath(_ base: String, key: String) -> String {
    let simple = !key.isEmpty && key.utf8.allSatisfy { c in
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
    }
    return simple ? "\(base).\(key)" : "\(base)[\(JSONValue.string(key).serialized())]"
}

/// Reads the members of an object one by one, with errors that name the field.
/// Call `finish()` at the end to refuse members nobody asked for.
public struct JSONObjectReader {
    public let path: String
    public let object: JSONObject
    private var asked: [String] = []

    public init(_ value: JSONValue, path: String) throws {
        guard case .object(let o) = value else {
            throw JSONDecodingError.typeMismatch(path: path, expected: "an object", got: value)
        }
        self.path = path
        self.object = o
    }

    private mutating func note(_ key: String) {
        if !asked.contains(key) { asked.append(key) }
    }

    /// The member `key`, which must be present (and, unless `T` is Optional, not null).
    public mutating func required<T: JSONRepresentable>(_ key: String, as type: T.Type = T.self) throws -> T {
        note(key)
        let at = jsonPath(path, key: key)
        guard let value = object[key] else { throw JSONDecodingError.missing(path: at, expected: T.jsonTypeDescription) }
        return try T(json: value, path: at)
    }

    /// The member `key`, or nil when absent or null.
    public mutating func optional<T: JSONRepresentable>(_ key: String, as type: T.Type = T.self) throws -> T? {
        note(key)
        guard let value = object[key], !value.isNull else { return nil }
        return try T(json: value, path: jsonPath(path, key: key))
    }

    /// The member `key`, or `defaultValue` when absent or null.
    public mutating func optional<T: JSONRepresentable>(_ key: String, default defaultValue: T) throws -> T {
        try optional(key, as: T.self) ?? defaultValue
    }

    /// Throws for the first member that was never asked for.
    public func finish() throws {
        if let unknown = object.keys.first(where: { !asked.contains($0) }) {
            let allowed = asked.isEmpty ? "none" : asked.joined(separator: ", ")
            throw JSONDecodingError(path: jsonPath(path, key: unknown), problem: "unknown member (allowed: \(allowed))")
        }
    }
}

// MARK: - Conformances of basic types

extension String: JSONRepresentable {
    public init(json: JSONValue, path: String) throws {
        guard case .string(let s) = json else { throw JSONDecodingError.typeMismatch(path: path, expected: "a string", got: json) }
        self = s
    }
    public var json: JSONValue { .string(self) }
    public static var schema: JSONValue { ["type": "string"] }
}

extension Bool: JSONRepresentable {
    public init(json: JSONValue, path: String) throws {
        guard case .bool(let b) = json else { throw JSONDecodingError.typeMismatch(path: path, expected: "a boolean", got: json) }
        self = b
    }
    public var json: JSONValue { .bool(self) }
    public static var schema: JSONValue { ["type": "boolean"] }
}

extension Int64: JSONRepresentable {
    public init(json: JSONValue, path: String) throws {
        guard case .int(let i) = json else { throw JSONDecodingError.typeMismatch(path: path, expected: "an integer", got: json) }
        self = i
    }
    public var json: JSONValue { .int(self) }
    public static var schema: JSONValue { ["type": "integer"] }
}

extension Int: JSONRepresentable {
    public init(json: JSONValue, path: String) throws {
        guard case .int(let i) = json, let v = Int(exactly: i) else {
            throw JSONDecodingError.typeMismatch(path: path, expected: "an integer", got: json)
        }
        self = v
    }
    public var json: JSONValue { .int(Int64(self)) }
    public static var schema: JSONValue { ["type": "integer"] }
}

extension Double: JSONRepresentable {
    /// Accepts integers too.
    public init(json: JSONValue, path: String) throws {
        guard let d = json.doubleValue else { throw JSONDecodingError.typeMismatch(path: path, expected: "a number", got: json) }
        self = d
    }
    public var json: JSONValue { .double(self) }
    public static var schema: JSONValue { ["type": "number"] }
}

extension JSONValue: JSONRepresentable, RPCResultConvertible {
    /// Any value.
    public init(json: JSONValue, path: String) { self = json }
    public var json: JSONValue { self }
    public static var schema: JSONValue { [:] }
}

extension JSONObject: JSONRepresentable {
    public init(json: JSONValue, path: String) throws {
        guard case .object(let o) = json else { throw JSONDecodingError.typeMismatch(path: path, expected: "an object", got: json) }
        self = o
    }
    public var json: JSONValue { .object(self) }
    public static var schema: JSONValue { ["type": "object"] }

    /// Members from optional values, leaving out the nil ones.
    public init(_ pairs: KeyValuePairs<String, JSONValue?>) {
        self.init()
        for (k, v) in pairs { if let v { self[k] = v } }
    }
}

extension Array: JSONRepresentable where Element: JSONRepresentable {
    public init(json: JSONValue, path: String) throws {
        guard case .array(let items) = json else {
            throw JSONDecodingError.typeMismatch(path: path, expected: Self.jsonTypeDescription, got: json)
        }
        self = try items.enumerated().map { try Element(json: $1, path: "\(path)[\($0)]") }
    }
    public var json: JSONValue { .array(map(\.json)) }
    public static var schema: JSONValue { ["type": "array", "items": Element.schema] }
    public static var jsonTypeDescription: String { "an array of \(Element.jsonTypeDescription.dropArticle)s" }
}

extension Optional: JSONRepresentable where Wrapped: JSONRepresentable {
    /// null is nil.
    public init(json: JSONValue, path: String) throws {
        self = json.isNull ? nil : try Wrapped(json: json, path: path)
    }
    public var json: JSONValue { self?.json ?? .null }
    public static var schema: JSONValue { ["anyOf": [Wrapped.schema, ["type": "null"]]] }
    public static var jsonTypeDescription: String { "\(Wrapped.jsonTypeDescription) or null" }
}

extension String {
    fileprivate var dropArticle: String {
        if hasPrefix("an ") { return String(dropFirst(3)) }
        if hasPrefix("a ") { return String(dropFirst(2)) }
        return self
    }
}

/// Params of a method that takes none: absent, `{}` or `[]`.
public struct RPCNoParams: RPCParams, Equatable {
    public init() {}
    public init(json: JSONValue, path: String) throws {
        try JSONObjectReader(json, path: path).finish()
    }
    public var json: JSONValue { .object([:]) }
    public static var schema: JSONValue { JSONSchema.object([]) }
}

/// The result of a method with nothing to return: `{}` (an object, so fields can be added later).
public struct RPCEmptyResult: RPCResultConvertible, Equatable {
    public init() {}
    public init(json: JSONValue, path: String) throws {
        _ = try JSONObjectReader(json, path: path)
    }
    public var json: JSONValue { .object([:]) }
    public static var schema: JSONValue { JSONSchema.object([]) }
}

// MARK: - Schemas

/// Small builders for the JSON Schemas that params and results describe.
public enum JSONSchema {
    public struct Property: Sendable {
        public var name: String
        public var schema: JSONValue
        public var required: Bool
        public var description: String?

        public init(name: String, schema: JSONValue, required: Bool = true, description: String? = nil) {
            self.name = name
            self.schema = schema
            self.required = required
            self.description = description
        }

        public static func property<T: JSONRepresentable>(_ name: String, _ type: T.Type, required: Bool = true,
                                                          _ description: String? = nil) -> Property
        {
            Property(name: name, schema: T.schema, required: required, description: description)
        }

        public static func property(_ name: String, schema: JSONValue, required: Bool = true,
                                    _ description: String? = nil) -> Property
        {
            Property(name: name, schema: schema, required: required, description: description)
        }
    }

    /// `{"type":"object","properties":{…},"required":[…],"additionalProperties":false}`,
    /// properties in the given order, each with its description.
    public static func object(_ properties: [Property], description: String? = nil) -> JSONValue {
        var props = JSONObject()
        for p in properties { props[p.name] = describe(p.schema, p.description) }
        var o: JSONObject = ["type": "object", "properties": .object(props)]
        let required = properties.filter(\.required).map { JSONValue.string($0.name) }
        if !required.isEmpty { o["required"] = .array(required) }
        o["additionalProperties"] = false
        if let description { o["description"] = .string(description) }
        return .object(o)
    }

    /// `{"type":"string","enum":[…]}`.
    public static func stringEnum(_ values: [String], description: String? = nil) -> JSONValue {
        describe(["type": "string", "enum": .array(values.map(JSONValue.string))], description)
    }

    /// `schema` with a description added (when it is an object schema and there is one).
    public static func describe(_ schema: JSONValue, _ description: String?) -> JSONValue {
        guard let description, case .object(var o) = schema else { return schema }
        o["description"] = .string(description)
        return .object(o)
    }
}
