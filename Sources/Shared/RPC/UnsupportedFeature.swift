extension RPCError {
    /// For a client calling something only newer daemons have: this error, when it says the
    /// daemon does not know the method (or event type), as "this annexd does not support
    /// FEATURE: upgrade it" (code, reason and details kept); nil for any other error.
    public func unsupported(_ feature: String) -> RPCError? {
        guard code == RPCErrorCode.methodNotFound.rawValue || reason == "unknown_event_type" else { return nil }
        return RPCError(code: code, message: "this annexd does not support \(feature): upgrade it",
                        reason: reason ?? "method_not_found", details: data)
    }
}
