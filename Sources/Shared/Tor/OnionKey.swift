import Crypto
import CSodium

/// A Tor v3 onion service key: the ed25519 key pair behind one `.onion` address.
///
/// Tor keeps and takes the secret half in its *expanded* 64-byte form, never the 32-byte
/// seed: `SHA-512(seed)` with the first half clamped as an ed25519 scalar
/// (`[0] &= 248; [31] &= 63; [31] |= 64`, tor's `ed25519_ref10_secret_key_expand`) and the
/// second half kept as the signing nonce prefix. That form is what `ADD_ONION ED25519-V3:`
/// takes and returns and what a HiddenServiceDir's `hs_ed25519_secret_key` holds, so a key
/// read back from either has no seed.
///
/// `description` shows only the address, so printing or logging a key never leaks it.
public struct OnionKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public static let seedByteCount = 32
    public static let publicKeyByteCount = 32
    public static let expandedSecretKeyByteCount = 64
    /// The version byte of v3 onion addresses.
    public static let addressVersion: UInt8 = 3
    /// Base32 characters in an address, without the ".onion" suffix.
    public static let addressCharacterCount = 56

    /// The 32-byte seed this key was made from, when it is known (not for keys read back from tor).
    public let seed: [UInt8]?
    /// The 64-byte expanded secret key, as tor stores and takes it.
    public let expandedSecretKey: [UInt8]
    /// The 32-byte ed25519 public key (the identity key the address encodes).
    public let publicKey: [UInt8]

    /// A fresh key from 32 random bytes (libsodium's `randombytes_buf`).
    public static func generate() -> OnionKey {
        do {
            return try OnionKey(seed: Sodium.randomBytes(seedByteCount))
        } catch {
            preconditionFailure("a random 32-byte seed must make a valid key: \(error)")
        }
    }

    /// The key made from a 32-byte ed25519 seed (an RFC 8032 private key).
    public init(seed: [UInt8]) throws(OnionKeyError) {
        guard seed.count == Self.seedByteCount else { throw .badSeedLength(seed.count) }
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var sk = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        defer { sodium_memzero(&sk, sk.count) }
        guard crypto_sign_seed_keypair(&pk, &sk, seed) == 0 else { throw .invalidScalar }
        var expanded = [UInt8](repeating: 0, count: Self.expandedSecretKeyByteCount)
        crypto_hash_sha512(&expanded, seed, UInt64(seed.count))
        expanded[0] &= 248
        expanded[31] &= 63
        expanded[31] |= 64
        self.seed = seed
        self.expandedSecretKey = expanded
        self.publicKey = pk
    }

    /// The key held in tor's expanded 64-byte form (from `ADD_ONION` or `hs_ed25519_secret_key`).
    ///
    /// The first half must be a clamped scalar, as every ed25519 implementation makes it:
    /// tor's own scalar multiplication is undefined for a set top bit, so an unclamped key
    /// could give annexd and tor different addresses.
    public init(expandedSecretKey: [UInt8]) throws(OnionKeyError) {
        guard expandedSecretKey.count == Self.expandedSecretKeyByteCount else {
            throw .badExpandedKeyLength(expandedSecretKey.count)
        }
        guard expandedSecretKey[0] & 7 == 0, expandedSecretKey[31] & 0xC0 == 0x40 else { throw .unclampedScalar }
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: Self.publicKeyByteCount)
        let rc = expandedSecretKey.withUnsafeBufferPointer { crypto_scalarmult_ed25519_base_noclamp(&pk, $0.baseAddress!) }
        guard rc == 0 else { throw .invalidScalar }
        self.seed = nil
        self.expandedSecretKey = expandedSecretKey
        self.publicKey = pk
    }

    // MARK: Addresses

    /// The service's address: 56 lowercase base32 characters and ".onion".
    public var onionAddress: String { Self.address(fromPublicKey: publicKey) }

    /// rend-spec-v3 §6: `base32(PUBKEY | CHECKSUM | VERSION) + ".onion"`, where
    /// `CHECKSUM = SHA3-256(".onion checksum" | PUBKEY | VERSION)[:2]` and `VERSION = 0x03`.
    public static func address(fromPublicKey publicKey: [UInt8]) -> String {
        precondition(publicKey.count == publicKeyByteCount, "an ed25519 public key has 32 bytes, not \(publicKey.count)")
        return Base32.encode(publicKey + checksum(publicKey: publicKey, version: addressVersion) + [addressVersion]) + ".onion"
    }

    /// The public key a v3 address encodes, after checking its length, alphabet, version,
    /// checksum and that the key is a valid ed25519 point (as tor's `hs_parse_address` does).
    /// Accepts the address with or without ".onion", in either case.
    public static func publicKey(fromAddress address: String) throws(OnionKeyError) -> [UInt8] {
        var label = Substring(address)
        if label.lowercased().hasSuffix(".onion") { label = label.dropLast(6) }
        let count = label.unicodeScalars.count
        guard count == addressCharacterCount else {
            throw .badAddressLength(count)
        }
        let decoded: [UInt8]
        do throws(Base32.DecodeError) {
            decoded = try Base32.decode(String(label))
        } catch {
            switch error {
            case .invalidCharacter(let c, let offset): throw .badAddressCharacter(c, offset: offset)
            case .invalidLength, .nonZeroTrailingBits: throw .badAddressLength(count)  // unreachable for 56 characters
            }
        }
        let publicKey = Array(decoded[0..<32])
        let version = decoded[34]
        guard version == addressVersion else { throw .badAddressVersion(version) }
        guard Array(decoded[32..<34]) == checksum(publicKey: publicKey, version: version) else { throw .badAddressChecksum }
        Sodium.ensureInitialized()
        guard crypto_core_ed25519_is_valid_point(publicKey) == 1 else { throw .invalidPublicKey }
        return publicKey
    }

    /// True if `address` is a valid v3 onion address (see `publicKey(fromAddress:)`).
    public static func isValidAddress(_ address: String) -> Bool {
        (try? publicKey(fromAddress: address)) != nil
    }

    static func checksum(publicKey: [UInt8], version: UInt8) -> [UInt8] {
        var hasher = SHA3_256()
        hasher.update(data: Array(".onion checksum".utf8))
        hasher.update(data: publicKey)
        hasher.update(data: [version])
        return Array(hasher.finalize().prefix(2))
    }

    // MARK: Control port

    /// The key argument of tor's `ADD_ONION`: `ED25519-V3:` and the base64 of the expanded key.
    public var addOnionKeyBlob: String { Self.addOnionKeyType + ":" + Self.base64(expandedSecretKey) }

    static let addOnionKeyType = "ED25519-V3"

    /// The key in the form `ADD_ONION` takes and returns (`PrivateKey=ED25519-V3:…`), with or without base64 padding.
    public init(addOnionKeyBlob blob: String) throws(OnionKeyError) {
        let prefix = Self.addOnionKeyType + ":"
        guard blob.hasPrefix(prefix) else { throw .badKeyBlob("it does not start with \"\(prefix)\"") }
        guard let bytes = Self.unbase64(String(blob.dropFirst(prefix.count))) else {
            throw .badKeyBlob("the key after \"\(prefix)\" is not valid base64")
        }
        guard bytes.count == Self.expandedSecretKeyByteCount else {
            throw .badKeyBlob("the key is \(bytes.count) bytes, not \(Self.expandedSecretKeyByteCount)")
        }
        try self.init(expandedSecretKey: bytes)
    }

    // MARK: HiddenServiceDir files

    static let secretKeyFileHeader = "== ed25519v1-secret: type0 =="
    static let publicKeyFileHeader = "== ed25519v1-public: type0 =="
    static let keyFileHeaderByteCount = 32

    /// The contents of a HiddenServiceDir's `hs_ed25519_secret_key`: a 32-byte NUL-padded
    /// header, then the 64-byte expanded key (96 bytes). Tor wants the file mode 0600.
    public var secretKeyFileBytes: [UInt8] { Self.keyFileHeader(Self.secretKeyFileHeader) + expandedSecretKey }

    /// The contents of a HiddenServiceDir's `hs_ed25519_public_key` (64 bytes).
    public var publicKeyFileBytes: [UInt8] { Self.keyFileHeader(Self.publicKeyFileHeader) + publicKey }

    /// The key in a HiddenServiceDir's `hs_ed25519_secret_key` (tor's or one written by `secretKeyFileBytes`).
    public init(secretKeyFile bytes: [UInt8]) throws(OnionKeyError) {
        let body = try Self.keyFileBody(bytes, header: Self.secretKeyFileHeader, bodyCount: Self.expandedSecretKeyByteCount,
                                        name: "hs_ed25519_secret_key")
        try self.init(expandedSecretKey: body)
    }

    /// The public key in a HiddenServiceDir's `hs_ed25519_public_key`.
    public static func publicKey(fromPublicKeyFile bytes: [UInt8]) throws(OnionKeyError) -> [UInt8] {
        try keyFileBody(bytes, header: publicKeyFileHeader, bodyCount: publicKeyByteCount, name: "hs_ed25519_public_key")
    }

    private static func keyFileHeader(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        return bytes + [UInt8](repeating: 0, count: keyFileHeaderByteCount - bytes.count)
    }

    private static func keyFileBody(_ bytes: [UInt8], header: String, bodyCount: Int, name: String) throws(OnionKeyError) -> [UInt8] {
        let expectedCount = keyFileHeaderByteCount + bodyCount
        guard bytes.count == expectedCount else {
            throw .badKeyFile("\(name) must be \(expectedCount) bytes, not \(bytes.count)")
        }
        guard Array(bytes[0..<keyFileHeaderByteCount]) == keyFileHeader(header) else {
            throw .badKeyFile("\(name) does not start with the header \"\(header)\" padded with NULs to 32 bytes")
        }
        return Array(bytes[keyFileHeaderByteCount...])
    }

    // MARK: Equality and printing

    /// Two keys are equal when their expanded secret keys are (compared in constant time),
    /// whether or not either knows its seed.
    public static func == (a: OnionKey, b: OnionKey) -> Bool {
        Sodium.constantTimeEqual(a.expandedSecretKey, b.expandedSecretKey)
    }

    public var description: String { "OnionKey(\(onionAddress))" }
    public var debugDescription: String { description }

    // MARK: Base64 (libsodium, original alphabet)

    static func base64(_ bytes: [UInt8]) -> String {
        Sodium.ensureInitialized()
        let capacity = (bytes.count + 2) / 3 * 4 + 1
        var out = [CChar](repeating: 0, count: capacity)
        _ = sodium_bin2base64(&out, capacity, bytes, bytes.count, sodium_base64_VARIANT_ORIGINAL)
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Decodes base64 (original alphabet) with or without `=` padding; nil if it is not valid.
    static func unbase64(_ text: String) -> [UInt8]? {
        Sodium.ensureInitialized()
        var trimmed = Array(text.utf8)
        var padding = 0
        while trimmed.last == UInt8(ascii: "="), padding < 2 { trimmed.removeLast(); padding += 1 }
        guard !trimmed.isEmpty, padding == 0 || (trimmed.count + padding) % 4 == 0 else { return nil }
        var out = [UInt8](repeating: 0, count: trimmed.count * 3 / 4 + 1)
        var outCount = 0
        var end: UnsafePointer<CChar>? = nil
        let rc = trimmed.withUnsafeBufferPointer { input in
            input.withMemoryRebound(to: CChar.self) { chars in
                sodium_base642bin(&out, out.count, chars.baseAddress, chars.count, nil, &outCount, &end,
                                  sodium_base64_VARIANT_ORIGINAL_NO_PADDING)
            }
        }
        guard rc == 0 else { return nil }
        return Array(out.prefix(outCount))
    }
}

/// Why an onion key, address, key blob or key file was refused.
public enum OnionKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    case badSeedLength(Int)
    case badExpandedKeyLength(Int)
    /// The first half of an expanded key is not a clamped ed25519 scalar.
    case unclampedScalar
    /// libsodium refused the scalar (zero, or it gives the identity point).
    case invalidScalar
    case badAddressLength(Int)
    case badAddressCharacter(Character, offset: Int)
    case badAddressVersion(UInt8)
    case badAddressChecksum
    /// The address's checksum is right but the key in it is not a valid ed25519 point.
    case invalidPublicKey
    case badKeyBlob(String)
    case badKeyFile(String)

    public var description: String {
        switch self {
        case .badSeedLength(let n):
            return "an ed25519 seed is 32 bytes, not \(n)"
        case .badExpandedKeyLength(let n):
            return "a tor expanded ed25519 secret key is 64 bytes, not \(n)"
        case .unclampedScalar:
            return "not a tor ed25519 secret key: its first 32 bytes are not a clamped scalar (a corrupt or foreign key file?)"
        case .invalidScalar:
            return "not a usable ed25519 secret key: its scalar is zero or gives the identity point"
        case .badAddressLength(let n):
            return "a v3 onion address has 56 base32 characters before \".onion\", not \(n)"
                + (n == 16 ? " (this looks like a v2 address, which tor no longer supports)" : "")
        case .badAddressCharacter(let c, let offset):
            return "invalid character \(String(reflecting: c)) at position \(offset + 1) of the onion address (allowed: a-z and 2-7)"
        case .badAddressVersion(let v):
            return "onion address version is \(v), but only version 3 exists; is the address mistyped?"
        case .badAddressChecksum:
            return "onion address checksum does not match: the address is mistyped or truncated"
        case .invalidPublicKey:
            return "the onion address's checksum is right but the key in it is not a valid ed25519 public key"
        case .badKeyBlob(let why):
            return "not an ADD_ONION key (\"ED25519-V3:<base64 of 64 bytes>\"): \(why)"
        case .badKeyFile(let why):
            return "not a tor onion key file: \(why)"
        }
    }
}
