#if canImport(Glibc)
import Glibc
#endif

/// Splits the RPC byte stream into lines (one JSON text each), refusing any line longer
/// than `maxLength` without buffering it. Pure: the NIO decoder of the RPC server
/// (BoundedLineDecoder) asks it where each line ends. A trailing `\r` is not part of the
/// line (hand-typed clients: socat, nc).
public struct RPCLineFramer: Sendable {
    public struct LineTooLong: Error, Equatable, Sendable {}

    public let maxLength: Int
    /// Bytes at the start of the unread input already known to hold no newline.
    private var scanned = 0

    public init(maxLength: Int) { self.maxLength = maxLength }

    /// The next line in `unread` (the input not yet consumed): its length without `\r\n`
    /// or `\n`, and how many bytes to consume with it; nil when more bytes are needed.
    public mutating func nextLine<C: Collection<UInt8>>(in unread: C) throws(LineTooLong)
        -> (length: Int, consumed: Int)?
    {
        let found = unread.withContiguousStorageIfAvailable { nextLine(in: UnsafeRawBufferPointer($0)) }
            ?? Array(unread).withUnsafeBytes { nextLine(in: $0) }
        return try found.get()
    }

    /// The same over bytes in memory (what the server's decoder passes): a scan with memchr.
    public mutating func nextLine(in unread: UnsafeRawBufferPointer) -> Result<(length: Int, consumed: Int)?, LineTooLong> {
        if scanned < unread.count, let base = unread.baseAddress,
           let nl = memchr(base + scanned, Int32(UInt8(ascii: "\n")), unread.count - scanned)
        {
            let length = base.distance(to: UnsafeRawPointer(nl))
            scanned = 0
            if length > maxLength { return .failure(LineTooLong()) }
            let crlf = length > 0 && unread[length - 1] == UInt8(ascii: "\r")
            return .success((crlf ? length - 1 : length, length + 1))
        }
        scanned = unread.count
        if unread.count > maxLength { return .failure(LineTooLong()) }
        return .success(nil)
    }
}
