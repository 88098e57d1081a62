// MARK: - Registry and OpenRPC

/// What the OpenRPC document says about one method.
public struct MethodDescriptor: Equatable, Sendable {
    public var name: String
    public var summary: String
    public var paramsSchema: JSONValue
    public var resultName: String
    public var resultSchema: JSONValue

    public init<M: RPCMethod>(_ type: M.Type) {
        name = M.method
        summary = M.summary
        paramsSchema = M.Params.schema
        resultName = M.resultName
        resultSchema = M.Result.schema
    }

    /// The params as OpenRPC content descriptors, one per property of the params schema, in order.
    public var openRPCParams: [JSONValue] {
        guard let props = paramsSchema["properties"]?.objectValue else { return [] }
        let required = Set(paramsSchema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        return props.map { key, schema in
            var d: JSONObject = ["name": .string(key)]
            if let description = schema["description"] { d["description"] = description }
            d["required"] = .bool(required.contains(key))
            d["schema"] = schema
            return .object(d)
        }
    }

    public var openRPC: JSONValue {
        [
            "name": .string(name),
            "summary": .string(summary),
            "paramStructure": "by-name",
            "params": .array(openRPCParams),
            "result": ["name": .string(resultName), "schema": resultSchema],
        ]
    }
}

/// The list of methods a server offers, and the OpenRPC document that describes them.
/// `rpc.discover` is always there.
public struct MethodRegistry: Sendable {
    public var title: String
    public var version: String
    public private(set) var descriptors: [String: MethodDescriptor] = [:]
    /// Members added after `methods` (OpenRPC's `x-` extensions, e.g. annexd's `x-events`).
    public var extensions: JSONObject

    public init(title: String = "annexd", version: String, methods: [any RPCMethod.Type] = [], extensions: JSONObject = [:]) {
        self.title = title
        self.version = version
        self.extensions = extensions
        add(RPCDiscover.self)
        for m in methods { add(m) }
    }

    /// Adds a method; a name may be registered only once.
    public mutating func add<M: RPCMethod>(_ type: M.Type) {
        precondition(descriptors[M.method] == nil, "RPC method \(M.method) registered twice")
        descriptors[M.method] = MethodDescriptor(type)
    }

    public func contains(_ method: String) -> Bool { descriptors[method] != nil }

    /// Method names, sorted.
    public var methodNames: [String] { descriptors.keys.sorted() }

    /// `{"openrpc":"1.3.2","info":{"title","version"},"methods":[…]}`, methods sorted by name,
    /// so the same methods always give the same text.
    public var openRPCDocument: JSONValue {
        var doc: JSONObject = [
            "openrpc": .string(RPCDiscover.openRPCVersion),
            "info": ["title": .string(title), "version": .string(version)],
            "methods": .array(methodNames.map { descriptors[$0]!.openRPC }),
        ]
        for (k, v) in extensions { doc[k] = v }
        return .object(doc)
    }
}

/// The built-in `rpc.discover` (OpenRPC service discovery): returns the OpenRPC document.
public enum RPCDiscover: RPCMethod {
    public static let openRPCVersion = "1.3.2"
    public static let method = "rpc.discover"
    public static let summary = "Returns the OpenRPC document that describes this server's methods"
    public static let resultName = "OpenRPC Schema"
    public typealias Params = RPCNoParams
    public typealias Result = OpenRPCDocument
}

/// An OpenRPC document, kept as JSON.
public struct OpenRPCDocument: RPCResultConvertible, Equatable {
    public var json: JSONValue
    public init(_ json: JSONValue) { self.json = json }
    public init(json: JSONValue, path: String) throws {
        guard json["openrpc"]?.stringValue != nil, json["methods"]?.arrayValue != nil else {
            throw JSONDecodingError(path: path, problem: "is not an OpenRPC document (no \"openrpc\" or \"methods\")")
        }
        self.json = json
    }
    public static var schema: JSONValue {
        ["$ref": "https://raw.githubusercontent.com/open-rpc/meta-schema/master/schema.json"]
    }
}
