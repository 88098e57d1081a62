/// Control authentication methods (PROTOCOLINFO's METHODS).
public enum TorAuthMethod: Sendable, Hashable, CustomStringConvertible {
    case null, hashedPassword, cookie, safeCookie
    case other(String)

    public init(_ name: String) {
        switch name {
        case "NULL": self = .null
        case "HASHEDPASSWORD": self = .hashedPassword
        case "COOKIE": self = .cookie
        case "SAFECOOKIE": self = .safeCookie
        default: self = .other(name)
        }
    }

    public var description: String {
        switch self {
        case .null: return "NULL"
        case .hashedPassword: return "HASHEDPASSWORD"
        case .cookie: return "COOKIE"
        case .safeCookie: return "SAFECOOKIE"
        case .other(let name): return name
        }
    }
}

/// PROTOCOLINFO's answer (control-spec §3.21).
public struct TorProtocolInfo: Sendable, Equatable {
    public var protocolInfoVersion: Int
    /// In tor's order.
    public var authMethods: [TorAuthMethod]
    /// The cookie file tor reads COOKIE/SAFECOOKIE credentials from (escapes decoded).
    public var cookieFile: String?
    /// e.g. "0.4.9.11".
    public var torVersion: String?

    public init(protocolInfoVersion: Int = 1, authMethods: [TorAuthMethod], cookieFile: String? = nil, torVersion: String? = nil) {
        self.protocolInfoVersion = protocolInfoVersion
        self.authMethods = authMethods
        self.cookieFile = cookieFile
        self.torVersion = torVersion
    }

    /// Parses the reply; unknown InfoLines and extra fields are ignored, as the spec asks.
    public init(reply: TorControlReply) throws(TorControlError) {
        try reply.requireSuccess(for: "PROTOCOLINFO")
        var version: Int?
        var methods: [TorAuthMethod] = []
        var cookieFile: String?
        var torVersion: String?
        for line in reply.lines where line.kind == .mid {
            let fields = try TorReplyFields(line.text)
            switch fields.positional.first {
            case "PROTOCOLINFO":
                version = fields.positional.dropFirst().first.flatMap { Int($0) }
            case "AUTH":
                methods = (fields["METHODS"] ?? "").split(separator: ",").map { TorAuthMethod(String($0)) }
                cookieFile = fields["COOKIEFILE"]
            case "VERSION":
                torVersion = fields["Tor"]
            default:
                break
            }
        }
        guard let version else { throw .unexpectedReply(command: "PROTOCOLINFO", reply: reply.description) }
        self.init(protocolInfoVersion: version, authMethods: methods, cookieFile: cookieFile, torVersion: torVersion)
    }
}

/// AUTHCHALLENGE's answer: `250 AUTHCHALLENGE SERVERHASH=<64 hex> SERVERNONCE=<64 hex>`.
public struct TorAuthChallenge: Sendable, Equatable {
    public var serverHash: [UInt8]
    public var serverNonce: [UInt8]

    public init(serverHash: [UInt8], serverNonce: [UInt8]) {
        self.serverHash = serverHash
        self.serverNonce = serverNonce
    }

    public init(reply: TorControlReply) throws(TorControlError) {
        try reply.requireSuccess(for: "AUTHCHALLENGE")
        let fields = try TorReplyFields(reply.message)
        guard fields.positional.first == "AUTHCHALLENGE",
              let hash = fields["SERVERHASH"].flatMap(TorHex.decode), hash.count == 32,
              let nonce = fields["SERVERNONCE"].flatMap(TorHex.decode), nonce.count == 32 else {
            throw .unexpectedReply(command: "AUTHCHALLENGE", reply: reply.description)
        }
        self.init(serverHash: hash, serverNonce: nonce)
    }
}

/// ADD_ONION's answer: the service id (the address without ".onion") and, for a key tor made
/// without DiscardPK, the key.
public struct TorAddOnionReply: Sendable, Equatable {
    public var serviceID: String
    /// `ED25519-V3:<base64>` (see `OnionKey(addOnionKeyBlob:)`).
    public var privateKey: String?

    public init(serviceID: String, privateKey: String? = nil) {
        self.serviceID = serviceID
        self.privateKey = privateKey
    }

    public init(reply: TorControlReply) throws(TorControlError) {
        try reply.requireSuccess(for: "ADD_ONION")
        var serviceID: String?
        var privateKey: String?
        for line in reply.lines where line.kind == .mid {
            if line.text.hasPrefix("ServiceID=") { serviceID = String(line.text.dropFirst("ServiceID=".count)) }
            if line.text.hasPrefix("PrivateKey=") { privateKey = String(line.text.dropFirst("PrivateKey=".count)) }
        }
        guard let serviceID, !serviceID.isEmpty else {
            throw .unexpectedReply(command: "ADD_ONION", reply: reply.description)
        }
        self.init(serviceID: serviceID, privateKey: privateKey)
    }

    /// The service's address with ".onion".
    public var onionAddress: String { serviceID + ".onion" }

    /// The key tor returned, if any (only for `addOnionNewKey` without `.discardPK`).
    public var key: OnionKey? { privateKey.flatMap { try? OnionKey(addOnionKeyBlob: $0) } }
}

/// GETINFO's and GETCONF's `key=value` answers (control-spec §3.3, §3.9).
public enum TorKeyValueReply {
    /// `250-key=value` lines and `250+key=` data blocks (the value is the block), the final
    /// `250 OK` skipped. A repeated key keeps its last value.
    public static func getInfo(_ reply: TorControlReply) throws(TorControlError) -> [String: String] {
        try reply.requireSuccess(for: "GETINFO")
        var values: [String: String] = [:]
        for (key, value) in try pairs(reply, command: "GETINFO") { values[key] = value ?? "" }
        return values
    }

    /// GETCONF's lines in order; a nil value is an option at its (non-empty) default.
    /// Repeated options (e.g. several SocksPort lines) appear once per value.
    public static func getConf(_ reply: TorControlReply) throws(TorControlError) -> [(key: String, value: String?)] {
        try reply.requireSuccess(for: "GETCONF")
        return try pairs(reply, command: "GETCONF").map { (key: $0.0, value: $0.1.map(unquoteIfQuoted)) }
    }

    private static func pairs(_ reply: TorControlReply, command: String) throws(TorControlError) -> [(String, String?)] {
        var out: [(String, String?)] = []
        for (index, line) in reply.lines.enumerated() {
            // GETINFO ends with "250 OK"; GETCONF's last line is a value too.
            if command == "GETINFO" && index == reply.lines.count - 1 && line.text == "OK" { continue }
            guard let eq = line.text.firstIndex(of: "=") else {
                if command == "GETCONF" && !line.text.isEmpty { out.append((line.text, nil)); continue }
                throw .unexpectedReply(command: command, reply: reply.description)
            }
            let key = String(line.text[..<eq])
            let inline = String(line.text[line.text.index(after: eq)...])
            out.append((key, line.kind == .data ? (line.data ?? "") : inline))
        }
        return out
    }

    private static func unquoteIfQuoted(_ value: String) -> String {
        guard value.hasPrefix("\""), let decoded = try? TorQuotedString.decode(value) else { return value }
        return decoded
    }
}

/// Hex as the control protocol uses it: tor writes upper case, and reads either.
public enum TorHex {
    public static func encode(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

    /// nil unless `text` is an even number of hex digits.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
