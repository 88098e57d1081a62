#if canImport(Glibc)
import Glibc
#endif
import Shared

/// A blocking P2P byte stream over a pair of file descriptors (stdin/stdout,
/// a child's pipes, or one socket twice). Lines are bounded by `LineBuffer`;
/// DATA payloads go straight between the descriptor and the caller's buffer.
public final class FDConnection: @unchecked Sendable {
    public let readFD: Int32
    public let writeFD: Int32
    private var input = LineBuffer()
    private var output: [UInt8] = []
    private var chunk: UnsafeMutableRawBufferPointer
    public private(set) var atEOF = false
    /// Called with every line sent or received (direction "<" in, ">" out), for debug logs.
    public var trace: ((String, String) -> Void)?
    /// Sees (and may pace) every DATA payload byte in and out: progress, bandwidth limits.
    public var meter: PayloadMeter?

    public static let chunkSize = 1 << 20

    public init(readFD: Int32, writeFD: Int32) {
        self.readFD = readFD
        self.writeFD = writeFD
        self.chunk = .allocate(byteCount: Self.chunkSize, alignment: 64)
        Self.enlargePipe(readFD)
        Self.enlargePipe(writeFD)
    }

    /// Pipes default to 64 KiB, which makes bulk DATA ping-pong between
    /// processes; 1 MiB lets sender and receiver overlap. Best effort: no-op on sockets and files.
    static func enlargePipe(_ fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFIFO else { return }
        _ = fcntl(fd, 1031 /* F_SETPIPE_SZ */, Int32(chunkSize))
    }

    deinit { chunk.deallocate() }

    public enum ReadError: Error, CustomStringConvertible {
        case lineTooLong
        case notUTF8
        public var description: String {
            switch self {
            case .lineTooLong: return LineBuffer.LineError.tooLong.description
            case .notUTF8: return LineBuffer.LineError.notUTF8.description
            }
        }
    }

    /// Next line without its newline; nil at end of stream. Flushes pending output first,
    /// unless `flushing` is false: a thread that only reads (the CONNECT relay's feeder) must
    /// not touch the output another thread is writing.
    public func readLine(flushing: Bool = true) throws -> String? {
        if flushing { try flush() }
        while true {
            do {
                if let line = try input.nextLine() {
                    trace?("<", line)
                    return line
                }
            } catch .tooLong {
                throw ReadError.lineTooLong
            } catch {
                throw ReadError.notUTF8
            }
            if try fill() == 0 { return nil }
        }
    }

    /// Reads exactly `count` payload bytes (fewer only at end of stream), passing
    /// each piece to `sink`. Returns how many bytes arrived.
    @discardableResult
    public func readPayload(count: Int64, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        var remaining = count
        while remaining > 0 && input.bufferedCount > 0 {
            let n = try input.takeBytes(max: Int(min(remaining, Int64(Int.max)))) { buf in
                try sink(buf)
                return buf.count
            }
            meter?.moved(n)
            remaining -= Int64(n)
        }
        while remaining > 0 {
            let want = admit(Int(min(remaining, Int64(chunk.count))))
            let n = read(readFD, chunk.baseAddress, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("read from peer")
            }
            if n == 0 { atEOF = true; break }
            meter?.moved(n)
            try sink(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
            remaining -= Int64(n)
        }
        return count - remaining
    }

    /// Reads up to `buffer.count` payload bytes straight into `buffer` (bytes
    /// already buffered first). Returns 0 only at end of stream.
    public func readPayloadSome(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if input.bufferedCount > 0 {
            let n = input.takeBytes(max: buffer.count) { buf in
                buffer.baseAddress!.copyMemory(from: buf.baseAddress!, byteCount: buf.count)
                return buf.count
            }
            meter?.moved(n)
            return n
        }
        let want = admit(buffer.count)
        while true {
            let n = read(readFD, buffer.baseAddress, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("read from peer")
            }
            if n == 0 { atEOF = true }
            meter?.moved(n)
            return n
        }
    }

    public func send(_ message: P2PMessage) {
        let line = message.wireLine
        trace?(">", line)
        output.append(contentsOf: line.utf8)
        output.append(10)
    }

    public func sendRaw(_ bytes: UnsafeRawBufferPointer) throws {
        try flush()
        try Posix.writeAll(fd: writeFD, bytes, what: "to peer")
    }

    public func flush() throws {
        guard !output.isEmpty else { return }
        try output.withUnsafeBytes { try Posix.writeAll(fd: writeFD, $0, what: "to peer") }
        output.removeAll(keepingCapacity: true)
    }

    /// Sends pending output, then n bytes of `fd` from `offset` (a DATA payload; the caller has
    /// sent `DATA n`), with sendfile(2) where the kernel allows.
    /// Returns the bytes sent (fewer than `length` only if the file shrank: the caller must close).
    public func sendFileBytes(fd: Int32, offset: Int64, length: Int64) throws -> Int64 {
        try flush()
        var off = off_t(offset)
        var remaining = length
        var useSendfile = true
        while remaining > 0 {
            let want = admit(Int(min(remaining, Int64(chunk.count))))
            if useSendfile {
                let n = sendfile(writeFD, fd, &off, want)
                if n > 0 { remaining -= Int64(n); meter?.moved(n); continue }
                if n == 0 { break }
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == EINVAL || errno == ENOSYS { useSendfile = false; continue }
                throw SystemError("sendfile to peer")
            }
            let n = pread(fd, chunk.baseAddress, want, off)
            if n < 0 { if errno == EINTR { continue }; throw SystemError("read content") }
            if n == 0 { break }
            try Posix.writeAll(fd: writeFD, UnsafeRawBufferPointer(rebasing: chunk[0..<n]), what: "to peer")
            meter?.moved(n)
            off += off_t(n)
            remaining -= Int64(n)
        }
        return length - remaining
    }

    /// How many of `want` bytes to move now (the meter may wait for bandwidth, and lower it).
    private func admit(_ want: Int) -> Int {
        guard let meter else { return want }
        return max(1, min(want, meter.admit(want)))
    }

    private func fill() throws -> Int {
        while true {
            let n = read(readFD, chunk.baseAddress, chunk.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("read from peer")
            }
            if n == 0 { atEOF = true; return 0 }
            input.append(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
            return n
        }
    }
}

/// Watches the DATA payload of a connection: `admit` is asked before each read or write (it may
/// block to keep a bandwidth limit, and answer fewer bytes); `moved` is told what went.
public protocol PayloadMeter: AnyObject {
    func admit(_ want: Int) -> Int
    func moved(_ count: Int)
}
