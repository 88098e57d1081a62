/// One complete reply from tor (control-spec §2.3): zero or more mid (`250-`) and data
/// (`250+` … `.`) lines, then an end line (`250 `). Replies with a 6xx code are asynchronous
/// events; all others answer the commands in the order they were sent.
public struct TorControlReply: Sendable, Equatable, CustomStringConvertible {
    public struct Line: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// `NNN-text`
            case mid
            /// `NNN+text` followed by a data block (its dot-unstuffed lines are `data`).
            case data
            /// `NNN text`, the last line of every reply.
            case end
        }

        public let code: Int
        public let kind: Kind
        /// The text after the status code and separator.
        public let text: String
        /// For `.data` lines: the block's lines, dot-unstuffed, joined with "\n" (no final newline).
        public let data: String?

        public init(code: Int, kind: Kind, text: String, data: String? = nil) {
            self.code = code
            self.kind = kind
            self.text = text
            self.data = data
        }
    }

    /// Never empty; the last line is `.end`.
    public let lines: [Line]

    public init(lines: [Line]) {
        precondition(lines.last?.kind == .end, "a reply ends with an end line")
        self.lines = lines
    }

    /// A one-line reply, e.g. `TorControlReply(code: 250, "OK")`.
    public init(code: Int, _ text: String) {
        self.init(lines: [Line(code: code, kind: .end, text: text)])
    }

    /// The status code (the same on every line, control-spec §2.3).
    public var code: Int { lines[lines.count - 1].code }
    /// The end line's text: "OK" for most successes, tor's explanation for failures.
    public var message: String { lines[lines.count - 1].text }
    public var isSuccess: Bool { (200..<300).contains(code) }
    /// A 6xx reply: an event, not an answer to a command.
    public var isAsync: Bool { (600..<700).contains(code) }

    /// Throws `TorControlError.rejected` unless the code is 2xx.
    public func requireSuccess(for command: String) throws(TorControlError) {
        guard isSuccess else { throw .rejected(command: command, code: code, message: message) }
    }

    /// The reply as tor sent it (data blocks re-stuffed), CRLF replaced by "\n".
    public var description: String {
        var out = ""
        for line in lines {
            let sep: String
            switch line.kind {
            case .mid: sep = "-"
            case .data: sep = "+"
            case .end: sep = " "
            }
            out += "\(line.code)\(sep)\(line.text)\n"
            if let data = line.data {
                let dataLines = data.isEmpty ? [] : data.split(separator: "\n", omittingEmptySubsequences: false)
                for dataLine in dataLines { out += (dataLine.hasPrefix(".") ? "." : "") + dataLine + "\n" }
                out += ".\n"
            }
        }
        return out
    }
}

/// The incremental reply parser: feed it bytes as they arrive, in chunks of any size, and it
/// returns each reply once its end line is in. A pure state machine: no I/O, no clocks.
///
/// Bounded: a line longer than `maxLineBytes`, or a reply larger than `maxReplyBytes`, is
/// refused with an error, and so is anything that is not the control protocol. After an error
/// the stream is out of step, so every later `feed` throws the same error: close the connection.
///
/// Lines end in CRLF; a bare LF is accepted too. In data blocks a leading "." is unstuffed
/// (RFC 2821 §4.5.2) and a line holding only "." ends the block.
public struct TorControlReplyParser: Sendable {
    public static let defaultMaxLineBytes = 64 * 1024
    public static let defaultMaxReplyBytes = 8 * 1024 * 1024

    public let maxLineBytes: Int
    public let maxReplyBytes: Int

    private var buffer: [UInt8] = []
    /// Bytes of `buffer` before this index are already consumed.
    private var consumed = 0
    /// Where to resume looking for LF (bytes before it have none).
    private var scanned = 0
    private var pending: [TorControlReply.Line] = []
    private var pendingBytes = 0
    /// Inside a data block: the `NNN+text` line and the block's lines so far.
    private var dataBlock: (code: Int, text: String, lines: [String])?
    private var failure: TorControlError?

    public init(maxLineBytes: Int = defaultMaxLineBytes, maxReplyBytes: Int = defaultMaxReplyBytes) {
        precondition(maxLineBytes > 0 && maxReplyBytes > 0)
        self.maxLineBytes = maxLineBytes
        self.maxReplyBytes = maxReplyBytes
    }

    /// True when no partial line or reply is buffered (the connection may end here cleanly).
    public var isIdle: Bool { failure == nil && consumed == buffer.count && pending.isEmpty && dataBlock == nil }

    /// Adds bytes; returns the replies they complete, in order.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) throws(TorControlError) -> [TorControlReply]
    where Bytes.Element == UInt8 {
        if let failure { throw failure }
        buffer.append(contentsOf: bytes)
        var replies: [TorControlReply] = []
        do throws(TorControlError) {
            while let lineEnd = nextLineFeed() {
                var end = lineEnd
                if end > consumed && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = buffer[consumed..<end]
                let wireCount = lineEnd + 1 - consumed
                consumed = lineEnd + 1
                scanned = consumed
                guard line.count <= maxLineBytes else { throw .lineTooLong(limit: maxLineBytes) }
                pendingBytes += wireCount
                guard pendingBytes <= maxReplyBytes else { throw TorControlError.replyTooLarge(limit: maxReplyBytes) }
                if let reply = try take(line) { replies.append(reply) }
            }
            guard buffer.count - consumed <= maxLineBytes + 1 else { throw TorControlError.lineTooLong(limit: maxLineBytes) }
        } catch {
            failure = error
            buffer = []
            consumed = 0
            scanned = 0
            throw error
        }
        compact()
        return replies
    }

    /// The index of the next LF at or after `consumed`, if one has arrived.
    private mutating func nextLineFeed() -> Int? {
        var i = scanned
        while i < buffer.count {
            if buffer[i] == UInt8(ascii: "\n") { return i }
            i += 1
        }
        scanned = buffer.count
        return nil
    }

    private mutating func compact() {
        if consumed == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            consumed = 0
            scanned = 0
        } else if consumed > 4096 && consumed * 2 > buffer.count {
            buffer.removeFirst(consumed)
            scanned -= consumed
            consumed = 0
        }
    }

    /// One line without its CRLF: extends the reply being built, and returns it when complete.
    private mutating func take(_ line: ArraySlice<UInt8>) throws(TorControlError) -> TorControlReply? {
        if var block = dataBlock {
            if line.count == 1 && line.first == UInt8(ascii: ".") {
                pending.append(.init(code: block.code, kind: .data, text: block.text, data: block.lines.joined(separator: "\n")))
                dataBlock = nil
            } else {
                let unstuffed = line.first == UInt8(ascii: ".") ? line.dropFirst() : line
                block.lines.append(String(decoding: unstuffed, as: UTF8.self))
                dataBlock = block
            }
            return nil
        }
        let (code, separator, text) = try Self.split(line)
        if let first = pending.first, first.code != code {
            throw .protocolViolation("status \(code) inside a reply that began with status \(first.code)")
        }
        switch separator {
        case UInt8(ascii: "-"):
            pending.append(.init(code: code, kind: .mid, text: text))
            return nil
        case UInt8(ascii: "+"):
            dataBlock = (code, text, [])
            return nil
        default:
            pending.append(.init(code: code, kind: .end, text: text))
            let reply = TorControlReply(lines: pending)
            pending = []
            pendingBytes = 0
            return reply
        }
    }

    /// `NNN` + one of " ", "-", "+" + text. A bare `NNN` is read as an end line with no text.
    private static func split(_ line: ArraySlice<UInt8>) throws(TorControlError) -> (Int, UInt8, String) {
        let digits = line.prefix(3)
        guard digits.count == 3, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw .protocolViolation("reply line without a 3-digit status code: \(preview(line))")
        }
        let code = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        let rest = line.dropFirst(3)
        guard let separator = rest.first else { return (code, UInt8(ascii: " "), "") }
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") || separator == UInt8(ascii: "+") else {
            throw .protocolViolation("reply line with \(String(reflecting: Character(Unicode.Scalar(separator)))) after its status code: \(preview(line))")
        }
        return (code, separator, String(decoding: rest.dropFirst(), as: UTF8.self))
    }

    private static func preview(_ line: ArraySlice<UInt8>) -> String {
        String(reflecting: String(decoding: line.prefix(80), as: UTF8.self))
    }
}
