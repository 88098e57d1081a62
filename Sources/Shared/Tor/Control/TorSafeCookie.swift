import Crypto

/// SAFECOOKIE authentication (control-spec §3.24): proves knowledge of the 32-byte cookie
/// without sending it, and makes tor prove it knows the cookie too.
///
///     ServerHash = HMAC-SHA256("Tor safe cookie authentication server-to-controller hash",
///                              cookie | clientNonce | serverNonce)
///     ClientHash = HMAC-SHA256("Tor safe cookie authentication controller-to-server hash",
///                              cookie | clientNonce | serverNonce)
public enum TorSafeCookie {
    public static let serverToControllerKey = "Tor safe cookie authentication server-to-controller hash"
    public static let controllerToServerKey = "Tor safe cookie authentication controller-to-server hash"
    /// Cookies are 32 bytes (control-spec §3.21); so are server nonces, and annexd's client nonces.
    public static let cookieByteCount = 32
    public static let nonceByteCount = 32

    public static func serverHash(cookie: [UInt8], clientNonce: [UInt8], serverNonce: [UInt8]) -> [UInt8] {
        mac(key: serverToControllerKey, cookie + clientNonce + serverNonce)
    }

    public static func clientHash(cookie: [UInt8], clientNonce: [UInt8], serverNonce: [UInt8]) -> [UInt8] {
        mac(key: controllerToServerKey, cookie + clientNonce + serverNonce)
    }

    /// True if tor's server hash is right for this cookie (compared in constant time).
    public static func isValidServerHash(_ hash: [UInt8], cookie: [UInt8], clientNonce: [UInt8], serverNonce: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(hash, authenticating: cookie + clientNonce + serverNonce,
                                               using: SymmetricKey(data: Array(serverToControllerKey.utf8)))
    }

    /// After AUTHCHALLENGE: checks tor's hash, and returns what to send with AUTHENTICATE.
    public static func response(cookie: [UInt8], cookiePath: String, clientNonce: [UInt8],
                                challenge: TorAuthChallenge) throws(TorControlError) -> [UInt8] {
        guard cookie.count == cookieByteCount else { throw .badCookieLength(path: cookiePath, length: cookie.count) }
        guard isValidServerHash(challenge.serverHash, cookie: cookie, clientNonce: clientNonce, serverNonce: challenge.serverNonce) else {
            throw .serverHashMismatch(cookiePath: cookiePath)
        }
        return clientHash(cookie: cookie, clientNonce: clientNonce, serverNonce: challenge.serverNonce)
    }

    private static func mac(key: String, _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(key.utf8))))
    }
}
