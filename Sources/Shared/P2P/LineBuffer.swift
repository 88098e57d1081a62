/// Byte-level framing of the P2P line protocol: bounded lines and raw DATA
/// payloads, from whatever chunks the transport delivers. Pure: no I/O.
public struct LineBuffer: Sendable {
    /// git-annex drops a connection whose line exceeds this many bytes.
    public static let maxLineLength = 32767

    public enum LineError: Error, Equatable, Sendable, CustomStringConvertible {
        case tooLong
        case notUTF8

        /// The text sent to the peer after `ERROR ` before the session ends.
        public var description: String {
            switch self {
            case .tooLong: return "protocol line longer than \(LineBuffer.maxLineLength) bytes"
            case .notUTF8: return "protocol line is not UTF-8"
            }
        }
    }

    private var storage: [UInt8] = []
    private var start = 0

    public init() {}

    public var bufferedCount: Int { storage.count - start }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        compactIfNeeded()
        storage.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compactIfNeeded()
        storage.append(contentsOf: bytes)
    }

    /// The next complete line without its `\n`, nil if more bytes are needed.
    /// Throws once more than `maxLineLength` bytes arrive without a newline.
    public mutating func nextLine() throws(LineError) -> String? {
        let end = storage.count
        let limit = min(end, start + Self.maxLineLength + 1)
        var i = start
        while i < limit {
            if storage[i] == 10 {
                let bytes = storage[start..<i]
                start = i + 1
                guard let s = String(validating: bytes, as: UTF8.self) else { throw .notUTF8 }
                return s
            }
            i += 1
        }
        if end - start > Self.maxLineLength { throw .tooLong }
        return nil
    }

    /// Removes up to `max` buffered bytes (payload of a DATA frame) and passes them on.
    public mutating func takeBytes<R>(max: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let n = Swift.min(max, bufferedCount)
        let r = try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<start + n])) }
        start += n
        return r
    }

    private mutating func compactIfNeeded() {
        if start > 0 && (start == storage.count || start >= 64 * 1024) {
            storage.removeSubrange(0..<start)
            start = 0
        }
    }
}
