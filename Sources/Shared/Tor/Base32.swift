/// RFC 4648 base32 as tor writes it: lowercase, no padding.
///
/// Decoding accepts either case (tor's own `base32_decode` does too) and rejects padding,
/// characters outside the alphabet, impossible lengths and non-zero trailing bits.
public enum Base32 {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
        /// A character outside `a–z`, `A–Z`, `2–7`, at this offset.
        case invalidCharacter(Character, offset: Int)
        /// A length no whole number of bytes encodes to (1, 3 or 6 mod 8).
        case invalidLength(Int)
        /// The bits after the last whole byte are not zero, so this is not a canonical encoding.
        case nonZeroTrailingBits

        public var description: String {
            switch self {
            case .invalidCharacter(let c, let offset):
                return "invalid base32 character \(String(reflecting: c)) at offset \(offset) (allowed: a-z and 2-7)"
            case .invalidLength(let n):
                return "invalid base32 length \(n): no whole number of bytes encodes to it"
            case .nonZeroTrailingBits:
                return "non-canonical base32: the unused trailing bits are not zero"
            }
        }
    }

    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity((bytes.underestimatedCount * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) throws(DecodeError) -> [UInt8] {
        let chars = Array(text.unicodeScalars)
        switch chars.count % 8 {
        case 1, 3, 6: throw .invalidLength(chars.count)
        default: break
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count * 5 / 8)
        var buffer: UInt32 = 0
        var bits = 0
        for (offset, scalar) in chars.enumerated() {
            let value: UInt32
            switch scalar.value {
            case 0x61...0x7A: value = scalar.value - 0x61          // a-z
            case 0x41...0x5A: value = scalar.value - 0x41          // A-Z
            case 0x32...0x37: value = scalar.value - 0x32 + 26     // 2-7
            default: throw .invalidCharacter(Character(scalar), offset: offset)
            }
            buffer = (buffer << 5) | value
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        if buffer != 0 { throw .nonZeroTrailingBits }
        return out
    }
}
