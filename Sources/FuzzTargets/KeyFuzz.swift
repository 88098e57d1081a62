import Shared

/// The git-annex key parser, which validates a key before it becomes part of an object path.
enum KeyFuzz {
    @Sendable static func key(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        let text = String(decoding: input, as: UTF8.self)
        guard let key = try? AnnexKey(parsing: text) else { return }
        // Byte for byte (String == is canonical equivalence): one key, one object path.
        try require(Array(key.serialized.utf8) == Array(text.utf8), "key \(key) parsed from a different text")
        try require(key.serialized.utf8.count <= AnnexKey.maxLength, "key longer than the limit")
        for part in [key.serialized, HashDirs.keyFile(key)] {
            try require(!part.contains("/") && !part.contains("..") && !part.utf8.contains(0),
                        "key \(KeyError.printable(text)) gives an unsafe path component")
        }
        for (dir, length) in [(HashDirs.lower(key), 3), (HashDirs.mixed(key), 2)] {
            let parts = dir.split(separator: "/", omittingEmptySubsequences: false)
            try require(parts.count == 2 && parts.allSatisfy { $0.utf8.count == length && $0.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || ("a"..."z").contains($0) || ("A"..."Z").contains($0) } },
                        "hash directory \(dir)")
        }
        try require(HashDirs.fileKey(HashDirs.keyFile(key)) == key, "keyFile/fileKey round trip of \(key)")
        try require((try? AnnexKey(parsing: key.nonChunk.serialized)) == key.nonChunk, "nonChunk of \(key) is no valid key")
    }
}
