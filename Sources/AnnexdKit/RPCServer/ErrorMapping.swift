import Shared

/// The one place where the services' errors become JSON-RPC errors: each `FailureKind` has
/// its code; the reason, message and details come from the service's error as they are.
extension RPCError {
    init(_ error: any ServiceError) {
        let code: Int = switch error.kind {
        case .invalidArgument: RPCErrorCode.invalidParams.rawValue
        case .notFound: AnnexdErrorCode.notFound.rawValue
        case .alreadyExists: AnnexdErrorCode.alreadyExists.rawValue
        case .invalidState: AnnexdErrorCode.invalidState.rawValue
        case .permissionDenied: AnnexdErrorCode.permissionDenied.rawValue
        case .unavailable: AnnexdErrorCode.unavailable.rawValue
        case .busy: AnnexdErrorCode.busy.rawValue
        case .gitFailed: AnnexdErrorCode.gitAnnexError.rawValue
        case .internalFailure: RPCErrorCode.internalError.rawValue
        }
        self.init(code: code, message: error.description, reason: error.reason, details: error.details)
    }

    /// A service's error mapped; other errors as the dispatcher treats them (-32603).
    static func mapping(_ error: any Error) -> any Error {
        (error as? any ServiceError).map(RPCError.init) ?? error
    }
}

extension RPCDispatcher {
    /// Registers `M` with a handler that calls a service; its errors are mapped here.
    mutating func on<M: RPCMethod>(_ type: M.Type, _ handler: @escaping @Sendable (M.Params, Context) async throws -> M.Result) {
        register(type) { params, context in
            do { return try await handler(params, context) } catch { throw RPCError.mapping(error) }
        }
    }
}
