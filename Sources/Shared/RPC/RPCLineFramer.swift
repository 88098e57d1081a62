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
    public mutating func nextLine<C: BidirectionalCollection<UInt8>>(in unread: C) throws(LineTooLong)
        -> (length: Int, consumed: Int)?
    {
        if let nl = unread.dropFirst(scanned).firstIndex(of: UInt8(ascii: "\n")) {
            let length = unread.distance(from: unread.startIndex, to: nl)
            scanned = 0
            if length > maxLength { throw LineTooLong() }
            let crlf = length > 0 && unread[unread.index(before: nl)] == UInt8(ascii: "\r")
            return (crlf ? length - 1 : length, length + 1)
        }
        scanned = unread.count
        if unread.count > maxLength { throw LineTooLong() }
        return nil
    }
}
