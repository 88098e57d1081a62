import Crypto

/// git-annex's two object directory schemes (Annex/DirHashes.hs), both derived
/// from the MD5 of the serialized key without chunk fields.
public enum HashDirs {
    /// `hashdirlower`, used in bare repositories: `abc/def`.
    public static func lower(_ key: AnnexKey) -> String {
        let hex = Hex.encode(Insecure.MD5.hash(data: Array(key.nonChunk.serialized.utf8)))
        let chars = Array(hex.utf8)
        return String(decoding: chars[0..<3], as: UTF8.self) + "/" + String(decoding: chars[3..<6], as: UTF8.self)
    }

    /// `hashdirmixed`, used in non-bare repositories: `Xy/Zw`.
    public static func mixed(_ key: AnnexKey) -> String {
        let md5 = Array(Insecure.MD5.hash(data: Array(key.nonChunk.serialized.utf8)))
        // First little-endian 32-bit word of the digest.
        let w = UInt32(md5[0]) | UInt32(md5[1]) << 8 | UInt32(md5[2]) << 16 | UInt32(md5[3]) << 24
        let alphabet = Array("0123456789zqjxkmvwgpfZQJXKMVWGPF".utf8)
        // git-annex shifts by 6 bits but masks 5: reproduced exactly.
        let cs = (0..<8).map { alphabet[Int((w >> (6 * UInt32($0))) & 31)] }
        var swapped = [UInt8]()
        for i in stride(from: 0, to: 8, by: 2) { swapped.append(cs[i + 1]); swapped.append(cs[i]) }
        let six = swapped.prefix(4)
        return String(decoding: six.prefix(2), as: UTF8.self) + "/" + String(decoding: six.suffix(2), as: UTF8.self)
    }

    /// The file (and directory) name git-annex uses for a key (Annex/Locations.hs keyFile):
    /// `&` → `&a`, `%` → `&s`, `:` → `&c`, `/` → `%` (annexd refuses `/` in keys anyway).
    public static func keyFile(_ key: AnnexKey) -> String {
        var out = ""
        for ch in key.serialized {
            switch ch {
            case "&": out += "&a"
            case "%": out += "&s"
            case ":": out += "&c"
            case "/": out += "%"
            default: out.append(ch)
            }
        }
        return out
    }

    /// The key a `keyFile` name stands for (Annex/Locations.hs fileKey), parsed and
    /// validated; nil for a name that is no valid key (annexd refuses `/` in keys).
    public static func fileKey(_ name: String) -> AnnexKey? {
        var out = ""
        var it = name.makeIterator()
        while let ch = it.next() {
            switch ch {
            case "%": out.append("/")
            case "&":
                switch it.next() {
                case "a": out.append("&")
                case "s": out.append("%")
                case "c": out.append(":")
                default: return nil
                }
            default: out.append(ch)
            }
        }
        return try? AnnexKey(parsing: out)
    }
}
