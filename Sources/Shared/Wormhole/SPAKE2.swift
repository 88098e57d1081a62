import CSodium
import Crypto

/// SPAKE2 in python-spake2 0.9's **symmetric** mode over Ed25519 (`SPAKE2_Symmetric`), the
/// way magic-wormhole uses it: password = the code, `idSymmetric` = the appid.
///
/// Byte for byte as python-spake2:
/// - password scalar `w = int(HKDF-SHA256(pw, salt="", info="SPAKE2 pw", 48), big-endian) mod L`;
/// - blinding element `S = arbitrary_element(b"symmetric")` (see `Ed25519.arbitraryElement`);
/// - message `0x53 ('S') || x·B + w·S`, x = `int(entropy64, big-endian) mod L`;
/// - `K = x·(Y − w·S)`; key = `SHA256(SHA256(pw) || SHA256(id) || sorted(X*, Y*) || K)` where
///   the two 32-byte elements are sorted bytewise, without their side byte.
///
/// The group arithmetic is libsodium's (`crypto_core_ed25519_*`,
/// `crypto_scalarmult_ed25519_*_noclamp`). One value per side; `finish` once.
public struct SPAKE2Symmetric: Sendable {
    /// The side byte of a symmetric message (`b"S"`); `A`/`B` mark python-spake2's asymmetric sides.
    public static let sideSymmetric: UInt8 = 0x53
    /// A message is the side byte and a 32-byte point.
    public static let messageLength = 33

    public let password: [UInt8]
    public let idSymmetric: [UInt8]
    /// `w`, 32 bytes little-endian.
    public let passwordScalar: [UInt8]
    /// `x`, 32 bytes little-endian.
    public let secretScalar: [UInt8]
    /// `x·B + w·S`, 32 bytes (without the side byte).
    public let outboundElement: [UInt8]
    /// What to send: `0x53 || outboundElement`.
    public var outboundMessage: [UInt8] { [Self.sideSymmetric] + outboundElement }

    /// Starts one side. `entropy` (64 bytes, as python-spake2's `entropy_f(64)`) fixes the
    /// secret scalar for test vectors; by default it is fresh random bytes.
    public init(password: [UInt8], idSymmetric: [UInt8], entropy: [UInt8]? = nil) throws(SPAKE2Error) {
        Sodium.ensureInitialized()
        let entropy = entropy ?? Sodium.randomBytes(64)
        guard entropy.count == 64 else { throw .badEntropyLength(entropy.count) }
        self.password = password
        self.idSymmetric = idSymmetric
        passwordScalar = Ed25519.passwordToScalar(password)
        secretScalar = Ed25519.reduceBigEndian(entropy)
        guard let xB = Ed25519.baseMultiply(secretScalar),
              let wS = Ed25519.multiply(passwordScalar, Ed25519.symmetricElement),
              let xs = Ed25519.add(xB, wS) else { throw .degenerate }
        outboundElement = xs
    }

    /// Convenience: password and appid as text, NFC-normalised UTF-8 (as magic-wormhole's `to_bytes`).
    public init(code: WormholeCode, appID: String, entropy: [UInt8]? = nil) throws(SPAKE2Error) {
        try self.init(password: code.passwordBytes, idSymmetric: WormholeCode.nfcBytes(appID), entropy: entropy)
    }

    /// The shared key (32 bytes) from the peer's 33-byte message. Both sides get the same key
    /// only if they used the same password and id; a wrong password is noticed later, when the
    /// first encrypted message fails to decrypt.
    public func finish(_ inbound: [UInt8]) throws(SPAKE2Error) -> [UInt8] {
        guard inbound.count == Self.messageLength else { throw .badMessageLength(inbound.count) }
        switch inbound[0] {
        case Self.sideSymmetric: break
        case 0x41, 0x42: throw .offSides(inbound[0])
        default: throw .unknownSide(inbound[0])
        }
        let y = Array(inbound[1...])
        guard Ed25519.isValidPoint(y) else { throw .invalidElement }
        guard y != outboundElement else { throw .reflection }
        guard let wS = Ed25519.multiply(passwordScalar, Ed25519.symmetricElement),
              let t = Ed25519.subtract(y, wS),
              let k = Ed25519.multiply(secretScalar, t) else { throw .invalidElement }
        let (first, second) = y.lexicographicallyPrecedes(outboundElement) ? (y, outboundElement) : (outboundElement, y)
        var transcript: [UInt8] = []
        transcript.reserveCapacity(160)
        transcript += Array(SHA256.hash(data: password))
        transcript += Array(SHA256.hash(data: idSymmetric))
        transcript += first
        transcript += second
        transcript += k
        return Array(SHA256.hash(data: transcript))
    }
}

public enum SPAKE2Error: Error, Equatable, Sendable, CustomStringConvertible {
    case badEntropyLength(Int)
    case badMessageLength(Int)
    /// The peer runs asymmetric SPAKE2 (side `A` or `B`), not magic-wormhole's symmetric mode.
    case offSides(UInt8)
    case unknownSide(UInt8)
    /// Not an Ed25519 point of the prime-order group (or the identity).
    case invalidElement
    /// The peer sent back our own message.
    case reflection
    /// A computation gave the identity (astronomically unlikely with honest inputs).
    case degenerate

    public var description: String {
        switch self {
        case .badEntropyLength(let n): "SPAKE2 needs 64 bytes of entropy, got \(n)"
        case .badMessageLength(let n): "the peer's SPAKE2 message is \(n) bytes, not 33: it is not a magic-wormhole client"
        case .offSides(let b): "the peer's SPAKE2 message is from asymmetric side '\(Character(Unicode.Scalar(b)))', not symmetric 'S': it is not a magic-wormhole client"
        case .unknownSide(let b): "the peer's SPAKE2 message starts with byte \(b), not 'S' (0x53): it is not a magic-wormhole client"
        case .invalidElement: "the peer's SPAKE2 message is not a valid Ed25519 group element"
        case .reflection: "the peer's SPAKE2 message is our own message reflected back"
        case .degenerate: "SPAKE2 produced the identity element; try again"
        }
    }
}

/// Ed25519 group operations on 32-byte encodings (libsodium), plus python-spake2's
/// password-to-scalar and arbitrary-element derivations.
public enum Ed25519 {
    /// `S` = python-spake2's `arbitrary_element(b"symmetric")`, computed once (and checked
    /// against the published constant in the tests).
    public static let symmetricElement: [UInt8] = {
        guard let s = arbitraryElement(seed: Array("symmetric".utf8)) else {
            preconditionFailure("python-spake2's S element could not be derived")
        }
        return s
    }()

    /// `int(HKDF-SHA256(pw, salt="", info="SPAKE2 pw", 48), big-endian) mod L`, little-endian.
    public static func passwordToScalar(_ password: [UInt8]) -> [UInt8] {
        reduceBigEndian(hkdf(password, info: Array("SPAKE2 pw".utf8), count: 48))
    }

    /// A big-endian integer of at most 64 bytes reduced mod L (32 bytes, little-endian).
    public static func reduceBigEndian(_ bytes: [UInt8]) -> [UInt8] {
        precondition(bytes.count <= 64)
        var wide = [UInt8](repeating: 0, count: 64)
        for (i, b) in bytes.reversed().enumerated() { wide[i] = b }
        var out = [UInt8](repeating: 0, count: 32)
        crypto_core_ed25519_scalar_reduce(&out, wide)
        return out
    }

    public static func baseMultiply(_ scalar: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        return crypto_scalarmult_ed25519_base_noclamp(&out, scalar) == 0 ? out : nil
    }

    /// `scalar · point`; nil for an invalid point or an identity result.
    public static func multiply(_ scalar: [UInt8], _ point: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        return crypto_scalarmult_ed25519_noclamp(&out, scalar, point) == 0 ? out : nil
    }

    public static func add(_ p: [UInt8], _ q: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        return crypto_core_ed25519_add(&out, p, q) == 0 ? out : nil
    }

    public static func subtract(_ p: [UInt8], _ q: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        return crypto_core_ed25519_sub(&out, p, q) == 0 ? out : nil
    }

    /// A canonical encoding of a point in the prime-order subgroup, not of small order.
    public static func isValidPoint(_ p: [UInt8]) -> Bool {
        p.count == 32 && crypto_core_ed25519_is_valid_point(p) == 1
    }

    /// python-spake2's `ed25519_basic.arbitrary_element(seed)`: `y = int(HKDF-SHA256(seed,
    /// salt="", info="SPAKE2 arbitrary element", 48), big-endian) mod p`; the first of
    /// y, y+1, … that is the y of a curve point (taken with even x, i.e. sign bit 0), times 8,
    /// unless that is the identity.
    public static func arbitraryElement(seed: [UInt8]) -> [UInt8]? {
        let h = hkdf(seed, info: Array("SPAKE2 arbitrary element".utf8), count: 48)
        var y = FieldElement(bigEndian: h)
        let identity: [UInt8] = [1] + [UInt8](repeating: 0, count: 31)
        for _ in 0..<1000 {
            let candidate = y.littleEndianBytes
            // crypto_core_ed25519_add decodes its inputs and only refuses points off the curve
            // (not points outside the prime-order subgroup), which is what is needed here.
            if let p2 = add(candidate, candidate), let p4 = add(p2, p2), let p8 = add(p4, p4), p8 != identity {
                return p8
            }
            y.increment()
        }
        return nil
    }

    /// RFC 5869 HKDF-SHA256 with an empty salt (= 32 zero bytes), as python-spake2 and
    /// magic-wormhole use it.
    public static func hkdf(_ ikm: [UInt8], info: [UInt8], count: Int) -> [UInt8] {
        WormholeKeys.hkdf(ikm, info: info, count: count)
    }
}

/// An integer mod p = 2^255 − 19 as four 64-bit little-endian limbs: only what
/// `arbitraryElement` needs (reduce 384 bits, add one).
struct FieldElement {
    var limbs: [UInt64]  // 4 limbs, value < p

    private static let p: [UInt64] = [0xffff_ffff_ffff_ffed, 0xffff_ffff_ffff_ffff, 0xffff_ffff_ffff_ffff, 0x7fff_ffff_ffff_ffff]

    init(bigEndian bytes: [UInt8]) {
        precondition(bytes.count <= 64)
        var wide = [UInt64](repeating: 0, count: 8)
        for (i, b) in bytes.reversed().enumerated() { wide[i / 8] |= UInt64(b) << (8 * UInt64(i % 8)) }
        // Fold: v = hi·2^255 + lo ≡ 19·hi + lo (mod p), until v < 2^255; then subtract p once if needed.
        while wide[4...].contains(where: { $0 != 0 }) || wide[3] >> 63 != 0 {
            var hi = [UInt64](repeating: 0, count: 5)  // wide >> 255
            for i in 0..<5 { hi[i] = (wide[i + 3] >> 63) | (i + 4 < 8 ? wide[i + 4] << 1 : 0) }
            var lo = Array(wide[0..<4])
            lo[3] &= 0x7fff_ffff_ffff_ffff
            // lo + 19·hi, into 8 limbs.
            var out = [UInt64](repeating: 0, count: 8)
            var carry: UInt64 = 0
            for i in 0..<8 {
                let (mh, ml) = (i < 5 ? hi[i] : 0).multipliedFullWidth(by: 19)
                let (s1, c1) = (i < 4 ? lo[i] : 0).addingReportingOverflow(ml)
                let (s2, c2) = s1.addingReportingOverflow(carry)
                out[i] = s2
                carry = mh + (c1 ? 1 : 0) + (c2 ? 1 : 0)
            }
            wide = out
        }
        limbs = Array(wide[0..<4])
        if !Self.less(limbs, Self.p) { limbs = Self.sub(limbs, Self.p) }
    }

    mutating func increment() {
        var i = 0
        while i < 4 {
            let (s, o) = limbs[i].addingReportingOverflow(1)
            limbs[i] = s
            if !o { break }
            i += 1
        }
        if !Self.less(limbs, Self.p) { limbs = Self.sub(limbs, Self.p) }
    }

    var littleEndianBytes: [UInt8] {
        (0..<32).map { UInt8(truncatingIfNeeded: limbs[$0 / 8] >> (8 * UInt64($0 % 8))) }
    }

    private static func less(_ a: [UInt64], _ b: [UInt64]) -> Bool {
        for i in stride(from: 3, through: 0, by: -1) where a[i] != b[i] { return a[i] < b[i] }
        return false
    }

    private static func sub(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        var out = a
        var borrow = false
        for i in 0..<4 {
            let (d1, o1) = a[i].subtractingReportingOverflow(b[i])
            let (d2, o2) = d1.subtractingReportingOverflow(borrow ? 1 : 0)
            out[i] = d2
            borrow = o1 || o2
        }
        return out
    }
}
