import Crypto
import CSodium

/// A git-annex backend, by name, and how annexd can verify content of its keys.
public struct Backend: Hashable, Sendable {
    public let name: String

    public init(name: String) { self.name = name }

    /// How content of a key with this backend is checked.
    public enum Verification: Equatable, Sendable {
        /// The key name is (or, for *E backends, starts with) this hash of the content.
        case hash(HashAlgorithm)
        /// git-annex keeps no checksum for these keys (WORM, URL, VURL): only the size, if the key has one.
        case sizeOnly
        /// A backend git-annex knows but no library annexd uses implements.
        case unsupported
    }

    /// Base name without the trailing `E` of extension-preserving variants.
    public var hashName: String {
        if name.hasSuffix("E"), HashAlgorithm(rawValue: String(name.dropLast())) != nil
            || Self.knownUnverifiable.contains(String(name.dropLast())) {
            return String(name.dropLast())
        }
        return name
    }

    public var hasExtension: Bool { hashName != name }

    public var verification: Verification {
        if Self.sizeOnlyBackends.contains(name) { return .sizeOnly }
        if let alg = HashAlgorithm(rawValue: hashName) { return .hash(alg) }
        return .unsupported
    }

    static let sizeOnlyBackends: Set<String> = ["WORM", "URL", "VURL"]
    /// Hash backends git-annex has that annexd cannot check (no well-kept library here).
    static let knownUnverifiable: Set<String> = [
        "SHA224", "SHA3_224", "SKEIN256", "SKEIN512", "BLAKE2BP512",
        "BLAKE2S160", "BLAKE2S224", "BLAKE2S256", "BLAKE2SP224", "BLAKE2SP256",
        "XXH3", "BLAKE3",
    ]

    /// The expected hex digest for a hash key (the key name up to its extension).
    public func expectedDigest(of key: AnnexKey) -> String {
        guard hasExtension, let dot = key.name.firstIndex(of: ".") else { return key.name }
        return String(key.name[..<dot])
    }
}

/// Hash algorithms annexd verifies, named as git-annex names its backends.
public enum HashAlgorithm: String, CaseIterable, Sendable {
    case sha256 = "SHA256", sha384 = "SHA384", sha512 = "SHA512"
    case sha3_256 = "SHA3_256", sha3_384 = "SHA3_384", sha3_512 = "SHA3_512"
    case sha1 = "SHA1", md5 = "MD5"
    case blake2b160 = "BLAKE2B160", blake2b224 = "BLAKE2B224", blake2b256 = "BLAKE2B256"
    case blake2b384 = "BLAKE2B384", blake2b512 = "BLAKE2B512"

    public var digestBytes: Int {
        switch self {
        case .sha256, .sha3_256, .blake2b256: return 32
        case .sha384, .sha3_384, .blake2b384: return 48
        case .sha512, .sha3_512, .blake2b512: return 64
        case .sha1, .blake2b160: return 20
        case .md5: return 16
        case .blake2b224: return 28
        }
    }

    public func makeHasher() -> ContentHasher {
        switch self {
        case .sha256: return CryptoHasher<SHA256>()
        case .sha384: return CryptoHasher<SHA384>()
        case .sha512: return CryptoHasher<SHA512>()
        case .sha3_256: return CryptoHasher<SHA3_256>()
        case .sha3_384: return CryptoHasher<SHA3_384>()
        case .sha3_512: return CryptoHasher<SHA3_512>()
        case .sha1: return CryptoHasher<Insecure.SHA1>()
        case .md5: return CryptoHasher<Insecure.MD5>()
        case .blake2b160, .blake2b224, .blake2b256, .blake2b384, .blake2b512:
            return Blake2bHasher(outputBytes: digestBytes)
        }
    }
}

/// Incremental hashing in constant memory.
public protocol ContentHasher: AnyObject {
    func update(_ bytes: UnsafeRawBufferPointer)
    /// Lowercase hex digest. Call once.
    func finalizeHex() -> String
}

extension ContentHasher {
    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
}

final class CryptoHasher<H: HashFunction>: ContentHasher {
    private var hasher = H()
    func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
    func finalizeHex() -> String { Hex.encode(hasher.finalize()) }
}

/// BLAKE2b with git-annex's output sizes, from libsodium's generichash.
final class Blake2bHasher: ContentHasher {
    /// libsodium's state is an opaque, 64-byte aligned struct.
    private let state: OpaquePointer
    private let raw: UnsafeMutableRawPointer
    private let outputBytes: Int

    init(outputBytes: Int) {
        precondition(outputBytes >= Int(crypto_generichash_BYTES_MIN) && outputBytes <= Int(crypto_generichash_BYTES_MAX))
        self.outputBytes = outputBytes
        Sodium.ensureInitialized()
        raw = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        state = OpaquePointer(raw)
        crypto_generichash_init(state, nil, 0, outputBytes)
    }

    deinit { raw.deallocate() }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        crypto_generichash_update(state, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
    }

    func finalizeHex() -> String {
        var out = [UInt8](repeating: 0, count: outputBytes)
        crypto_generichash_final(state, &out, outputBytes)
        return Hex.encode(out)
    }
}

public enum Sodium {
    private static let initialized: Bool = { sodium_init() >= 0 }()
    public static func ensureInitialized() { precondition(initialized, "libsodium failed to initialize") }

    /// Constant-time comparison of equal-length byte strings (false if lengths differ).
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        ensureInitialized()
        guard a.count == b.count, !a.isEmpty else { return false }
        return sodium_memcmp(a, b, a.count) == 0
    }

    public static func randomBytes(_ n: Int) -> [UInt8] {
        ensureInitialized()
        var out = [UInt8](repeating: 0, count: n)
        randombytes_buf(&out, n)
        return out
    }
}

public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func isLowerHex<S: StringProtocol>(_ s: S) -> Bool {
        s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}
