// MARK: - Dispatch

/// Routes requests to typed handlers: decodes params (-32602 with the field named when they
/// do not fit), runs the handler, encodes the result. `Context` is whatever a handler needs
/// to know about the caller (its connection, its uid).
///
/// Requests of a batch are answered one after the other, in order.
public struct RPCDispatcher<Context: Sendable>: Sendable {
    public typealias Handler = @Sendable (JSONValue?, Context) async -> Result<JSONValue, RPCError>

    public typealias InlineHandler = @Sendable (JSONValue?, Context) -> Result<JSONValue, RPCError>

    public private(set) var registry: MethodRegistry
    private var handlers: [String: Handler] = [:]
    private var inlineHandlers: [String: InlineHandler] = [:]

    public init(title: String = "annexd", version: String, extensions: JSONObject = [:]) {
        registry = MethodRegistry(title: title, version: version, extensions: extensions)
    }

    /// Registers `M` and its handler. A handler throws `RPCError` for failures the caller
    /// should see as they are; other errors become -32603 Internal error.
    public mutating func register<M: RPCMethod>(
        _ type: M.Type, handler: @escaping @Sendable (M.Params, Context) async throws -> M.Result
    ) {
        registry.add(type)
        handlers[M.method] = { params, context in
            switch Self.decode(M.Params.self, params) {
            case .failure(let error): return .failure(error)
            case .success(let decoded):
                do { return .success(try await handler(decoded, context).json) } catch { return .failure(Self.rpcError(error, decoding: false)) }
            }
        }
    }

    /// Registers `M` with a handler that never blocks or waits: a server may answer it right
    /// where the request arrived (`answerInline`), saving thread hops; batches use it too.
    public mutating func registerInline<M: RPCMethod>(
        _ type: M.Type, handler: @escaping @Sendable (M.Params, Context) throws -> M.Result
    ) {
        register(type) { params, context in try handler(params, context) }
        // do/catch rather than Result's combinators: no generic Result<M.Params, …> to look up per call.
        inlineHandlers[M.method] = { params, context in
            let decoded: M.Params
            do { decoded = try Self.decodeParams(M.Params.self, params) } catch { return .failure(Self.rpcError(error, decoding: true)) }
            do { return .success(try handler(decoded, context).json) } catch { return .failure(Self.rpcError(error, decoding: false)) }
        }
    }

    /// The outcome of `request` when its method was registered with `registerInline`, else nil.
    public func answerInline(_ request: RPCRequest, context: Context) -> Result<JSONValue, RPCError>? {
        guard let handler = inlineHandlers[request.method] else { return nil }
        return handler(request.params, context)
    }

    /// The outcome of one request.
    public func answer(_ request: RPCRequest, context: Context) async -> Result<JSONValue, RPCError> {
        if request.method == RPCDiscover.method {
            do {
                _ = try Self.decodeParams(RPCNoParams.self, request.params)
            } catch {
                return .failure(Self.rpcError(error, decoding: true))
            }
            return .success(registry.openRPCDocument)
        }
        guard let handler = handlers[request.method] else { return .failure(.methodNotFound(request.method)) }
        return await handler(request.params, context)
    }

    public func reply(to incoming: RPCIncoming, context: Context) async -> RPCReply {
        await incoming.reply { await answer($0, context: context) }
    }

    /// Parses one incoming text and answers it: what to send back (`.none`: nothing).
    public func reply(toText bytes: some Collection<UInt8>, limits: RPCLimits = RPCLimits(),
                      context: Context) async -> RPCReply
    {
        await reply(to: JSONRPC.parseIncoming(bytes, limits: limits), context: context)
    }

    /// Params as a `P`, or the -32602 error that says which field is wrong.
    static func decode<P: RPCParams>(_ type: P.Type, _ params: JSONValue?) -> Result<P, RPCError> {
        Result { try decodeParams(type, params) }.mapError { rpcError($0, decoding: true) }
    }

    /// Params as a `P`: absent params are `{}`, and so is `[]`; other arrays are refused
    /// (annexd takes parameters by name).
    public static func decodeParams<P: RPCParams>(_ type: P.Type, _ params: JSONValue?) throws -> P {
        var value = params ?? .object([:])
        if case .array(let items) = value {
            guard items.isEmpty else {
                throw JSONDecodingError(path: "params",
                                        problem: "expected an object (parameters are passed by name), got an array",
                                        expected: "an object")
            }
            value = .object([:])
        }
        return try P(json: value, path: "params")
    }

    static func rpcError(_ error: any Error, decoding: Bool) -> RPCError {
        switch error {
        case let e as RPCError: e
        case let e as JSONDecodingError: decoding ? .invalidParams(e) : .internalError("the result does not encode: \(e)")
        default: decoding ? .invalidParams("params: \(error)") : .internalError(String(describing: error))
        }
    }
}
