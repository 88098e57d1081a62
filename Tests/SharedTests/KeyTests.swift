import Testing
@testable import Shared

@Suite struct KeyTests {
    @Test func parsesAllFields() throws {
        let k = try AnnexKey(parsing: "SHA1-s5-m17-S2-C1--aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
        #expect(k.backendName == "SHA1")
        #expect(k.size == 5 && k.mtime == 17 && k.chunkSize == 2 && k.chunkNumber == 1)
        #expect(k.name == "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
        #expect(k.nonChunk.serialized == "SHA1-s5-m17--aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
    }

    @Test func keyNameMayContainDashes() throws {
        let k = try AnnexKey(parsing: "WORM-s3-m1700000000--foo--bar-baz")
        #expect(k.name == "foo--bar-baz")
    }

    @Test(arguments: [
        ("SHA256E-s6--ab/cd", "contains '/'"),
        ("SHA256E-s6--..", "contains '..'"),
        ("SHA256E-s6--a..b", "contains '..'"),
        ("SHA256E-s6--ab\u{0}cd", "contains a NUL byte"),
        ("SHA256E-s6--ab cd", "contains whitespace or a control character"),
        ("SHA256E-s6--ab\ncd", "contains whitespace or a control character"),
        ("SHA256E-sx--abcd", "field -s is not a decimal number"),
        ("SHA256E-s-1--abcd", "field -s is not a decimal number"),
        ("SHA256E-s99999999999999999999--abcd", "field -s is not a decimal number"),
        ("SHA256E-s06--abcd", "field -s is not a decimal number"),
        ("SHA256E-s6", "no '--' before the key name"),
        ("SHA256E-s6--", "empty key name after '--'"),
        ("sha256-s6--abcd", "backend name must be uppercase letters, digits or '_'"),
        ("SHA256-s6-s7--abcd", "field -s given twice"),
        ("SHA256-x6--abcd", "unknown field -x"),
        ("SHA256-S6--abcd", "-S and -C must come together"),
        ("SHA256-m1-s6--abcd", "fields out of canonical order"),
        ("", "empty"),
    ])
    func refusesBadKeys(text: String, reason: String) {
        #expect(throws: KeyError(key: text, reason: reason)) { try AnnexKey(parsing: text) }
    }

    @Test func refusesOverlongKey() {
        let text = "SHA256E-s1--" + String(repeating: "a", count: 300)
        #expect(throws: KeyError(key: text, reason: "longer than 255 bytes")) { try AnnexKey(parsing: text) }
    }

    @Test func extensionLimitIsGitAnnexs() throws {
        let hash = String(repeating: "a", count: 64)
        _ = try AnnexKey(parsing: "SHA256E-s1--\(hash)." + String(repeating: "x", count: 63))
        let long = "SHA256E-s1--\(hash)." + String(repeating: "x", count: 64)
        #expect(throws: KeyError(key: long, reason: "extension longer than 64 bytes")) { try AnnexKey(parsing: long) }
        // Without the E, the same name is just a name.
        _ = try AnnexKey(parsing: "SHA256-s1--\(hash)." + String(repeating: "x", count: 64))
    }

    @Test func errorTextEscapesControlCharacters() {
        let e = KeyError(key: "A--x\ny", reason: "r")
        #expect(e.description == #"invalid key "A--x\xay": r"#)
    }

    // Expected values from `git annex examinekey --format='${hashdirlower}|${hashdirmixed}'` (10.20230126).
    @Test(arguments: [
        ("SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt", "d91/b11", "mK/4w"),
        ("SHA256-s0--e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "999/812", "2K/49"),
        ("WORM-s3-m1700000000--foo&bar%x:y", "f5f/299", "qZ/6F"),
        ("MD5E-s100--0123456789abcdef0123456789abcdef", "941/946", "6f/w1"),
        ("SHA1-s5-S2-C1--aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", "1b8/ba0", "jV/88"),
        ("BLAKE2B256E-s11--abc.tar.gz", "a00/9d3", "60/fv"),
    ])
    func hashDirsMatchGitAnnex(key: String, lower: String, mixed: String) throws {
        let k = try AnnexKey(parsing: key)
        #expect(HashDirs.lower(k) == lower)
        #expect(HashDirs.mixed(k) == mixed)
    }

    @Test func keyFileEscapesLikeGitAnnex() throws {
        let k = try AnnexKey(parsing: "WORM-s3-m1700000000--foo&bar%x:y")
        #expect(HashDirs.keyFile(k) == "WORM-s3-m1700000000--foo&abar&sx&cy")
    }

    @Test func backendsAndExtensions() throws {
        let k = try AnnexKey(parsing: "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.tar.gz")
        #expect(k.backend.verification == .hash(.sha256))
        #expect(k.backend.expectedDigest(of: k) == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        #expect(Backend(name: "WORM").verification == .sizeOnly)
        #expect(Backend(name: "URL").verification == .sizeOnly)
        #expect(Backend(name: "SKEIN512E").verification == .unsupported)
        #expect(Backend(name: "BLAKE2B512E").verification == .hash(.blake2b512))
        #expect(Backend(name: "SHA3_256").verification == .hash(.sha3_256))
    }
}

@Suite struct HashTests {
    // Digests of "hello\n", from coreutils (sha*sum, md5sum, b2sum -l N) and python hashlib (sha3).
    @Test(arguments: [
        (HashAlgorithm.sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),
        (.sha1, "f572d396fae9206628714fb2ce00f72e94f2258f"),
        (.md5, "b1946ac92492d2347c6235b4d2611184"),
        (.sha512, "e7c22b994c59d9cf2b48e549b1e24666636045930d3da7c1acb299d1c3b7f931f94aae41edda2c2b207a36e10f8bcb8d45223e54878f5b316e7ce3b6bc019629"),
        (.sha3_256, "b314e28493eae9dab57ac4f0c6d887bddbbeb810e900d818395ace558e96516d"),
        (.blake2b256, "93becc6e9882211c3ec3708c95bcd69baab7bb59c7f4bc84ce637b88a534b783"),
        (.blake2b160, "d2f799bb9610968a2efa8f7682d5f2f1d45163d7"),
    ])
    func digestsOfHello(alg: HashAlgorithm, expected: String) {
        let h = alg.makeHasher()
        // Feed in two pieces: streaming must equal one-shot.
        h.update(Array("hel".utf8))
        h.update(Array("lo\n".utf8))
        let hex = h.finalizeHex()
        #expect(hex.utf8.count == alg.digestBytes * 2)
        #expect(hex == expected)
    }
}
