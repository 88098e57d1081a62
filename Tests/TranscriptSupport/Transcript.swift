import Foundation

/// A recorded git-annex P2P session (format v1, see
/// Fixtures/transcripts/README.md, "Transcript format"; the reference parser is
/// check_transcripts.py next to it).
public struct Transcript: Sendable {
    public enum Direction: Character, Sendable, CustomStringConvertible {
        case client = "C"
        case server = "S"
        public var description: String { String(rawValue) }
    }

    public enum Event: Equatable, Sendable {
        /// One protocol line without its `\n` (`C:`/`S:` as text, `C%`/`S%` base64-decoded).
        /// Kept as bytes: a `%` line need not be UTF-8.
        case line(Direction, [UInt8])
        /// A DATA payload: the `+` records concatenated; `announced` from the `DATA n`
        /// line, `seen` from the `=` record (less than announced: the stream ended first).
        case payload(Direction, bytes: [UInt8], announced: Int64, seen: Int64)
        /// `C~`/`S~`: bytes at the end of the stream that did not form a line.
        case trailing(Direction, [UInt8])
        case eof(Direction)
        /// `E:`, a line the server wrote to stderr.
        case stderr(String)
        /// `# key: value` (a comment without ": " has an empty value).
        case header(key: String, value: String)
    }

    public struct FormatError: Error, CustomStringConvertible {
        public let line: Int
        public let why: String
        public var description: String { "transcript line \(line): \(why)" }
    }

    public let name: String
    public let events: [Event]

    /// First value of a `# key: value` header.
    public func header(_ key: String) -> String? {
        for case .header(let k, let v) in events where k == key { return v }
        return nil
    }

    /// The protocol lines of one direction, as text.
    public func lines(_ d: Direction) -> [String] {
        events.compactMap {
            if case .line(d, let b) = $0 { return String(decoding: b, as: UTF8.self) }
            return nil
        }
    }

    /// Every byte one direction sent, in stream order: lines with their `\n`,
    /// payloads, trailing bytes.
    public func stream(_ d: Direction) -> [UInt8] {
        var out: [UInt8] = []
        for e in events {
            switch e {
            case .line(d, let b): out += b; out.append(10)
            case .payload(d, let b, _, _): out += b
            case .trailing(d, let b): out += b
            default: break
            }
        }
        return out
    }

    /// Did `d` close its side before the other direction did?
    public func closedFirst(_ d: Direction) -> Bool {
        for case .eof(let who) in events { return who == d }
        return false
    }

    // MARK: Parsing

    public static func parse(_ data: [UInt8], name: String) throws -> Transcript {
        var lines = data.split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
        guard lines.last == [] else { throw FormatError(line: lines.count, why: "no final newline") }
        lines.removeLast()
        guard let first = lines.first, first == Array("# annexd-p2p-transcript v1".utf8) else {
            throw FormatError(line: 1, why: "not a v1 transcript")
        }
        var events: [Event] = []
        // DATA announced per direction whose payload has not ended yet.
        var pending: [Direction: (announced: Int64, bytes: [UInt8])] = [:]
        for (i, raw) in lines.enumerated().dropFirst() {
            let n = i + 1
            func fail(_ why: String) -> FormatError { FormatError(line: n, why: why) }
            if raw.starts(with: Array("# ".utf8)) {
                let text = String(decoding: raw.dropFirst(2), as: UTF8.self)
                if let r = text.range(of: ": ") {
                    events.append(.header(key: String(text[..<r.lowerBound]), value: String(text[r.upperBound...])))
                } else {
                    events.append(.header(key: text, value: ""))
                }
                continue
            }
            guard raw.count >= 3, raw[2] == UInt8(ascii: " ") else { throw fail("malformed record") }
            let tag = (Character(UnicodeScalar(raw[0])), Character(UnicodeScalar(raw[1])))
            let value = Array(raw[3...])
            if tag == ("E", ":") {
                events.append(.stderr(String(decoding: value, as: UTF8.self)))
                continue
            }
            guard let d = Direction(rawValue: tag.0) else { throw fail("unknown direction \(tag.0)") }
            func base64() throws -> [UInt8] {
                guard let decoded = Data(base64Encoded: Data(value)) else { throw fail("bad base64") }
                return Array(decoded)
            }
            switch tag.1 {
            case ":", "%":
                if pending[d] != nil { throw fail("\(d) line inside a DATA payload") }
                let line = tag.1 == ":" ? value : try base64()
                events.append(.line(d, line))
                if let announced = dataLength(line) { pending[d] = (announced, []) }
            case "+":
                guard pending[d] != nil else { throw fail("\(d)+ without DATA") }
                pending[d]!.bytes += try base64()
            case "=":
                guard let p = pending.removeValue(forKey: d) else { throw fail("\(d)= without DATA") }
                guard let seen = Int64(String(decoding: value, as: UTF8.self)), seen == Int64(p.bytes.count) else {
                    throw fail("\(d)= says \(String(decoding: value, as: UTF8.self)), payload has \(p.bytes.count) bytes")
                }
                guard seen <= p.announced else { throw fail("payload longer than announced") }
                events.append(.payload(d, bytes: p.bytes, announced: p.announced, seen: seen))
            case "~":
                events.append(.trailing(d, try base64()))
            case ".":
                guard value == Array("EOF".utf8) else { throw fail("\(d). is not EOF") }
                if pending[d] != nil { throw fail("\(d) EOF inside a DATA payload without \(d)=") }
                events.append(.eof(d))
            default:
                throw fail("unknown record kind \(tag.1)")
            }
        }
        if let d = pending.keys.first { throw FormatError(line: lines.count, why: "\(d) DATA payload never ended") }
        return Transcript(name: name, events: events)
    }

    /// `DATA n` exactly as recorder.py recognises it (it splits payloads on this rule).
    public static func dataLength(_ line: [UInt8]) -> Int64? {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].elementsEqual("DATA".utf8), !parts[1].isEmpty,
              parts[1].allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int64(String(decoding: parts[1], as: UTF8.self))
    }
}

// MARK: Locating the fixtures

/// One transcript file: the pair directory (e.g. `10.20230126`) and the session name.
public struct TranscriptFile: Sendable, Hashable, CustomStringConvertible {
    public let pair: String
    public let name: String
    public var description: String { "\(pair)/\(name)" }

    public init(pair: String, name: String) {
        self.pair = pair
        self.name = name
    }

    public var url: URL { TranscriptFixtures.directory.appendingPathComponent(pair).appendingPathComponent(name + ".transcript") }

    public var isHandWritten: Bool { name.hasPrefix("server-") }

    public func load() throws -> Transcript {
        try Transcript.parse(Array(try Data(contentsOf: url)), name: name)
    }
}

public enum TranscriptFixtures {
    /// `transcripts` in this target's resources (SwiftPM copies it next to the test
    /// binary as `annexd_TranscriptSupport.resources/transcripts`), else in the source tree.
    public static let directory: URL = {
        if let dir = Bundle.module.url(forResource: "transcripts", withExtension: nil),
           FileManager.default.fileExists(atPath: dir.path) { return dir }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("transcripts")
    }()

    /// Every `*.transcript` in every pair directory, sorted.
    public static let all: [TranscriptFile] = {
        let fm = FileManager.default
        var out: [TranscriptFile] = []
        let pairs = (try? fm.contentsOfDirectory(atPath: directory.path)) ?? []
        for pair in pairs.sorted() {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: directory.appendingPathComponent(pair).path, isDirectory: &isDir),
                  isDir.boolValue else { continue }
            let files = (try? fm.contentsOfDirectory(atPath: directory.appendingPathComponent(pair).path)) ?? []
            for f in files.sorted() where f.hasSuffix(".transcript") {
                out.append(TranscriptFile(pair: pair, name: String(f.dropLast(".transcript".count))))
            }
        }
        return out
    }()
}
