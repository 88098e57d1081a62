import Testing
@testable import Shared

/// Vectors computed independently of libsodium with Python 3.11 and `cryptography` 48:
///
/// ```python
/// import hashlib, base64
/// from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
/// from cryptography.hazmat.primitives import serialization as s
/// def vec(seed):
///     pub = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
///     h = bytearray(hashlib.sha512(seed).digest()); h[0] &= 248; h[31] &= 63; h[31] |= 64
///     chk = hashlib.sha3_256(b".onion checksum" + pub + b"\x03").digest()[:2]
///     addr = base64.b32encode(pub + chk + b"\x03").decode().lower() + ".onion"
///     print(seed.hex(), pub.hex(), bytes(h).hex(), addr, "ED25519-V3:" + base64.b64encode(bytes(h)).decode())
/// vec(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))  # RFC 8032 test 1
/// vec(bytes(range(32)))
/// vec(bytes(32))
/// ```
///
/// The first address is also the one in tor's own unit test (test_hs_common.c, test_build_address).
struct OnionVector: Sendable, CustomStringConvertible {
    let seed: String, publicKey: String, expanded: String, address: String, blob: String
    var description: String { address }
}

let onionVectors: [OnionVector] = [
    OnionVector(
        seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        expanded: "307c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de94f"
            + "9b4f0afe280b746a778684e75442502057b7473a03f08f96f5a38e9287e01f8f",
        address: "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion",
        blob: "ED25519-V3:MHyDhk8oM8tCei7xwAoBPP3/J2jZgMCjpSDwBpBN6U+bTwr+KAt0aneGhOdUQlAgV7dHOgPwj5b1o46Sh+Afjw=="),
    OnionVector(
        seed: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        publicKey: "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
        expanded: "3894eea49c580aef816935762be049559d6d1440dede12e6a125f1841fff8e6f"
            + "a9d71862a3e5746b571be3d187b0041046f52ebd850c7cbd5fde8ee38473b649",
        address: "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bqead.onion",
        blob: "ED25519-V3:OJTupJxYCu+BaTV2K+BJVZ1tFEDe3hLmoSXxhB//jm+p1xhio+V0a1cb49GHsAQQRvUuvYUMfL1f3o7jhHO2SQ=="),
    OnionVector(
        seed: "0000000000000000000000000000000000000000000000000000000000000000",
        publicKey: "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
        expanded: "5046adc1dba838867b2bbbfdd0c3423e58b57970b5267a90f57960924a87f156"
            + "0a6a85eaa642dac835424b5d7c8d637c00408c7a73da672b7f498521420b6dd3",
        address: "hnvcppgow2sc2yvdvdicu3ynonsteflxdxrehjr2ybekdc2z3iu63yid.onion",
        blob: "ED25519-V3:UEatwduoOIZ7K7v90MNCPli1eXC1JnqQ9XlgkkqH8VYKaoXqpkLayDVCS118jWN8AECMenPaZyt/SYUhQgtt0w=="),
]

private func hex(_ s: String) -> [UInt8] {
    var out = [UInt8]()
    var it = s.utf8.makeIterator()
    while let hi = it.next(), let lo = it.next() {
        out.append(UInt8(String(decoding: [hi, lo], as: UTF8.self), radix: 16)!)
    }
    return out
}

@Suite struct Base32Tests {
    /// RFC 4648 §10, lowercased and unpadded.
    @Test(arguments: [
        ("", ""), ("f", "my"), ("fo", "mzxq"), ("foo", "mzxw6"), ("foob", "mzxw6yq"),
        ("fooba", "mzxw6ytb"), ("foobar", "mzxw6ytboi"),
    ])
    func rfc4648Vectors(plain: String, encoded: String) throws {
        #expect(Base32.encode(Array(plain.utf8)) == encoded)
        #expect(try Base32.decode(encoded) == Array(plain.utf8))
        #expect(try Base32.decode(encoded.uppercased()) == Array(plain.utf8))
    }

    @Test func roundTripsEveryLength() throws {
        for n in 0...40 {
            let bytes = Sodium.randomBytes(n)
            #expect(try Base32.decode(Base32.encode(bytes)) == bytes)
        }
    }

    @Test func rejectsBadInput() {
        #expect(throws: Base32.DecodeError.invalidCharacter("1", offset: 2)) { try Base32.decode("my1q") }
        #expect(throws: Base32.DecodeError.invalidCharacter("=", offset: 2)) { try Base32.decode("my======") }
        #expect(throws: Base32.DecodeError.invalidLength(1)) { try Base32.decode("m") }
        #expect(throws: Base32.DecodeError.invalidLength(3)) { try Base32.decode("mzx") }
        // "mz" decodes 'f' (0x66) only if the last 2 bits are zero: "mz" has them set.
        #expect(throws: Base32.DecodeError.nonZeroTrailingBits) { try Base32.decode("mz") }
    }
}

@Suite struct OnionKeyTests {
    @Test(arguments: onionVectors)
    func fromSeedMatchesIndependentDerivation(_ v: OnionVector) throws {
        let key = try OnionKey(seed: hex(v.seed))
        #expect(key.seed == hex(v.seed))
        #expect(key.publicKey == hex(v.publicKey))
        #expect(key.expandedSecretKey == hex(v.expanded))
        #expect(key.onionAddress == v.address)
        #expect(key.addOnionKeyBlob == v.blob)
        #expect(OnionKey.address(fromPublicKey: hex(v.publicKey)) == v.address)
    }

    @Test(arguments: onionVectors)
    func fromExpandedKeyDerivesSamePublicKey(_ v: OnionVector) throws {
        let key = try OnionKey(expandedSecretKey: hex(v.expanded))
        #expect(key.seed == nil)
        #expect(key.publicKey == hex(v.publicKey))
        #expect(key.onionAddress == v.address)
        #expect(key == (try OnionKey(seed: hex(v.seed))))
    }

    @Test(arguments: onionVectors)
    func addressRoundTrip(_ v: OnionVector) throws {
        #expect(try OnionKey.publicKey(fromAddress: v.address) == hex(v.publicKey))
        #expect(try OnionKey.publicKey(fromAddress: String(v.address.dropLast(6))) == hex(v.publicKey))
        #expect(try OnionKey.publicKey(fromAddress: v.address.uppercased()) == hex(v.publicKey))
        #expect(OnionKey.isValidAddress(v.address))
    }

    @Test(arguments: onionVectors)
    func addOnionBlobRoundTrip(_ v: OnionVector) throws {
        #expect(try OnionKey(addOnionKeyBlob: v.blob).publicKey == hex(v.publicKey))
        // Tor's base64 decoder does not need the padding; neither do we.
        #expect(try OnionKey(addOnionKeyBlob: String(v.blob.dropLast(2))).publicKey == hex(v.publicKey))
    }

    @Test func generatedKeysAreFreshAndConsistent() throws {
        let a = OnionKey.generate(), b = OnionKey.generate()
        #expect(a != b)
        #expect(a.seed?.count == 32)
        #expect(a.publicKey.count == 32 && a.expandedSecretKey.count == 64)
        #expect(a.onionAddress.count == 62 && a.onionAddress.hasSuffix(".onion"))
        #expect(a.onionAddress == a.onionAddress.lowercased())
        #expect(try OnionKey.publicKey(fromAddress: a.onionAddress) == a.publicKey)
        // The expanded key alone (what tor keeps) gives the same public key libsodium derived from the seed.
        #expect(try OnionKey(expandedSecretKey: a.expandedSecretKey).publicKey == a.publicKey)
        #expect(try OnionKey(addOnionKeyBlob: a.addOnionKeyBlob) == a)
        #expect(try OnionKey(secretKeyFile: a.secretKeyFileBytes) == a)
    }

    @Test func descriptionHidesSecrets() {
        let key = OnionKey.generate()
        #expect(key.description == "OnionKey(\(key.onionAddress))")
        #expect("\(key)" == key.description && String(reflecting: key) == key.description)
    }

    // MARK: Address validation

    let good = onionVectors[0].address

    @Test func rejectsBadLength() {
        #expect(throws: OnionKeyError.badAddressLength(55)) { try OnionKey.publicKey(fromAddress: String(good.dropFirst())) }
        #expect(throws: OnionKeyError.badAddressLength(57)) { try OnionKey.publicKey(fromAddress: "a" + good) }
        #expect(throws: OnionKeyError.badAddressLength(0)) { try OnionKey.publicKey(fromAddress: ".onion") }
        #expect(throws: OnionKeyError.badAddressLength(16)) { try OnionKey.publicKey(fromAddress: "expyuzz4wqqyqhjn.onion") }
        #expect(OnionKeyError.badAddressLength(16).description.contains("v2"))
    }

    @Test func rejectsBadCharacter() {
        var chars = Array(good)
        chars[10] = "1"
        #expect(throws: OnionKeyError.badAddressCharacter("1", offset: 10)) { try OnionKey.publicKey(fromAddress: String(chars)) }
        chars[10] = "-"
        #expect(throws: OnionKeyError.badAddressCharacter("-", offset: 10)) { try OnionKey.publicKey(fromAddress: String(chars)) }
        #expect(!OnionKey.isValidAddress(String(chars)))
    }

    @Test func rejectsBadChecksum() {
        // Change one character of the public key part: the checksum no longer matches.
        var chars = Array(good)
        chars[0] = chars[0] == "a" ? "b" : "a"
        #expect(throws: OnionKeyError.badAddressChecksum) { try OnionKey.publicKey(fromAddress: String(chars)) }
        // And one of the checksum part itself (characters 51–54 carry its 16 bits).
        chars = Array(good)
        chars[52] = chars[52] == "a" ? "b" : "a"
        #expect(throws: OnionKeyError.badAddressChecksum) { try OnionKey.publicKey(fromAddress: String(chars)) }
    }

    @Test func rejectsBadVersion() {
        let pub = hex(onionVectors[0].publicKey)
        for version: UInt8 in [0, 2, 4, 255] {
            // A correct checksum for the wrong version: only the version check can refuse it.
            let address = Base32.encode(pub + OnionKey.checksum(publicKey: pub, version: version) + [version]) + ".onion"
            #expect(address.count == 62)
            #expect(throws: OnionKeyError.badAddressVersion(version)) { try OnionKey.publicKey(fromAddress: address) }
        }
    }

    @Test func rejectsKeysThatAreNotPoints() {
        // Small-order points with a valid checksum and version: tor refuses these too.
        for pub in [[UInt8](repeating: 0, count: 32), [1] + [UInt8](repeating: 0, count: 31)] {
            let address = OnionKey.address(fromPublicKey: pub)
            #expect(throws: OnionKeyError.invalidPublicKey) { try OnionKey.publicKey(fromAddress: address) }
        }
    }

    // MARK: Key validation

    @Test func rejectsBadKeyMaterial() {
        #expect(throws: OnionKeyError.badSeedLength(31)) { try OnionKey(seed: [UInt8](repeating: 1, count: 31)) }
        #expect(throws: OnionKeyError.badExpandedKeyLength(32)) { try OnionKey(expandedSecretKey: [UInt8](repeating: 0, count: 32)) }
        var expanded = hex(onionVectors[0].expanded)
        expanded[0] |= 1
        #expect(throws: OnionKeyError.unclampedScalar) { try OnionKey(expandedSecretKey: expanded) }
        expanded = hex(onionVectors[0].expanded)
        expanded[31] |= 0x80
        #expect(throws: OnionKeyError.unclampedScalar) { try OnionKey(expandedSecretKey: expanded) }
        #expect(throws: OnionKeyError.self) { try OnionKey(addOnionKeyBlob: "RSA1024:AAAA") }
        #expect(throws: OnionKeyError.self) { try OnionKey(addOnionKeyBlob: "ED25519-V3:not base64!") }
        #expect(throws: OnionKeyError.self) { try OnionKey(addOnionKeyBlob: "ED25519-V3:AAAA") }
    }

    // MARK: HiddenServiceDir key files

    @Test func keyFileFormatsMatchTor() throws {
        let v = onionVectors[0]
        let key = try OnionKey(seed: hex(v.seed))
        let secretHeader = Array("== ed25519v1-secret: type0 ==".utf8) + [0, 0, 0]
        let publicHeader = Array("== ed25519v1-public: type0 ==".utf8) + [0, 0, 0]
        #expect(key.secretKeyFileBytes == secretHeader + hex(v.expanded))
        #expect(key.publicKeyFileBytes == publicHeader + hex(v.publicKey))
        #expect(key.secretKeyFileBytes.count == 96 && key.publicKeyFileBytes.count == 64)
    }

    @Test func keyFileRoundTrip() throws {
        let key = OnionKey.generate()
        let back = try OnionKey(secretKeyFile: key.secretKeyFileBytes)
        #expect(back == key && back.seed == nil)
        #expect(back.onionAddress == key.onionAddress)
        #expect(try OnionKey.publicKey(fromPublicKeyFile: key.publicKeyFileBytes) == key.publicKey)
    }

    @Test func rejectsBadKeyFiles() {
        let key = OnionKey.generate()
        let file = key.secretKeyFileBytes
        #expect(throws: OnionKeyError.self) { try OnionKey(secretKeyFile: Array(file.dropLast())) }
        #expect(throws: OnionKeyError.self) { try OnionKey(secretKeyFile: file + [0]) }
        #expect(throws: OnionKeyError.self) { try OnionKey(secretKeyFile: key.publicKeyFileBytes) }
        var wrongTag = file
        wrongTag[25] = UInt8(ascii: "1")  // "type1"
        #expect(throws: OnionKeyError.self) { try OnionKey(secretKeyFile: wrongTag) }
        var junkPadding = file
        junkPadding[31] = 0x20
        #expect(throws: OnionKeyError.self) { try OnionKey(secretKeyFile: junkPadding) }
        #expect(throws: OnionKeyError.self) { try OnionKey.publicKey(fromPublicKeyFile: file) }
    }
}
