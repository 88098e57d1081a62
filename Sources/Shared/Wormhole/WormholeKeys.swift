import CSodium
import Crypto

/// magic-wormhole's key schedule (`wormhole/_key.py`, `transit.py`) on the 32-byte SPAKE2 key,
/// and its SecretBox framing.
public enum WormholeKeys {
    /// The transit key purpose. magic-wormhole's file transfer always uses this literal, even
    /// with another appid such as git-annex's (its bug #339, kept for compatibility).
    public static let transitPurpose = "lothar.com/wormhole/text-or-file-xfer/transit-key"

    /// RFC 5869 HKDF-SHA256 with no salt (= 32 zero bytes): magic-wormhole's `util.HKDF`.
    public static func hkdf(_ ikm: [UInt8], info: [UInt8], count: Int) -> [UInt8] {
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: ikm), salt: [UInt8](),
                                         info: info, outputByteCount: count)
        return key.withUnsafeBytes { Array($0) }
    }

    /// `derive_key(key, purpose, length)`.
    public static func deriveKey(_ key: [UInt8], purpose: [UInt8], count: Int = 32) -> [UInt8] {
        hkdf(key, info: purpose, count: count)
    }

    public static func deriveKey(_ key: [UInt8], purpose: String, count: Int = 32) -> [UInt8] {
        deriveKey(key, purpose: Array(purpose.utf8), count: count)
    }

    /// `derive_phase_key(key, side, phase)`: purpose `wormhole:phase:` || SHA256(side) ||
    /// SHA256(phase) (raw digests). `side` is the author's side.
    public static func phaseKey(_ key: [UInt8], side: String, phase: String) -> [UInt8] {
        let purpose = Array("wormhole:phase:".utf8) + Array(SHA256.hash(data: Array(side.utf8)))
            + Array(SHA256.hash(data: Array(phase.utf8)))
        return deriveKey(key, purpose: purpose)
    }

    /// The verifier (`wormhole --verify` shows it as hex).
    public static func verifier(_ key: [UInt8]) -> [UInt8] {
        deriveKey(key, purpose: "wormhole:verifier")
    }

    public static func transitKey(_ key: [UInt8]) -> [UInt8] {
        deriveKey(key, purpose: transitPurpose)
    }
}

/// NaCl SecretBox (XSalsa20-Poly1305) as PyNaCl's "combined" form: nonce(24) || MAC(16) || ct.
public enum SecretBox {
    public static let keyLength = 32
    public static let nonceLength = 24
    public static let macLength = 16
    public static let overhead = nonceLength + macLength

    /// Encrypts with a fresh random nonce (or `nonce`, for tests and Transit counters).
    public static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8]? = nil) -> [UInt8] {
        precondition(key.count == keyLength, "SecretBox key must be 32 bytes")
        let nonce = nonce ?? Sodium.randomBytes(nonceLength)
        precondition(nonce.count == nonceLength, "SecretBox nonce must be 24 bytes")
        var out = nonce + [UInt8](repeating: 0, count: macLength + plaintext.count)
        let rc = out.withUnsafeMutableBufferPointer { buf in
            crypto_secretbox_easy(buf.baseAddress! + nonceLength, plaintext, UInt64(plaintext.count), nonce, key)
        }
        precondition(rc == 0, "crypto_secretbox_easy failed")
        return out
    }

    /// Decrypts nonce || MAC || ct; nil when it does not authenticate (wrong key or altered).
    public static func open(_ box: [UInt8], key: [UInt8]) -> [UInt8]? {
        precondition(key.count == keyLength, "SecretBox key must be 32 bytes")
        guard box.count >= overhead else { return nil }
        let nonce = Array(box[0..<nonceLength])
        let cipher = Array(box[nonceLength...])
        var out = [UInt8](repeating: 0, count: cipher.count - macLength)
        let rc = crypto_secretbox_open_easy(&out, cipher, UInt64(cipher.count), nonce, key)
        return rc == 0 ? out : nil
    }
}

extension Hex {
    /// Bytes from hex (either case); nil for an odd length or a non-hex character.
    public static func decode<S: StringProtocol>(_ s: S) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = v(u[i]), let lo = v(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
