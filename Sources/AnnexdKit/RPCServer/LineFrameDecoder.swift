import NIOCore
import Shared

/// Splits the RPC byte stream into lines (one JSON text each), refusing any
/// line longer than `maxLength` without buffering it: the connection is then
/// answered with a parse error and closed, since it cannot be resynchronised.
/// Where a line ends is decided by the pure `RPCLineFramer` (fuzzed on its own).
struct BoundedLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    typealias LineTooLong = RPCLineFramer.LineTooLong

    private var framer: RPCLineFramer

    init(maxLength: Int) { framer = RPCLineFramer(maxLength: maxLength) }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let (length, consumed) = try buffer.withUnsafeReadableBytes({ framer.nextLine(in: $0) }).get() else {
            return .needMoreData
        }
        let line = buffer.getSlice(at: buffer.readerIndex, length: length)!
        buffer.moveReaderIndex(forwardBy: consumed)
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
