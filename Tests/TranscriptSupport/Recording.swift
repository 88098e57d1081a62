import Foundation
import Shared

// The recording setup (record.sh / recorder.py) as data, every file content in the
// recordings, and the comparison of a byte stream with a recorded one.

/// The git-annex builds the transcripts were recorded with.
public enum AnnexVersion: String, Sendable {
    /// Debian's git-annex: speaks P2P protocol up to version 1.
    case debian = "10.20230126"
    /// PyPI's git-annex: up to version 4.
    case pypi = "10.20261026"

    /// From a `# server:` / `# client:` header, e.g. `git-annex 10.20261026-g351f69fa…`.
    public init?(header: String?) {
        guard let h = header, h.hasPrefix("git-annex ") else { return nil }
        let v = h.dropFirst("git-annex ".count).prefix { $0 != "-" }
        self.init(rawValue: String(v))
    }

    public var maxProtocolVersion: Int {
        switch self {
        case .debian: return 1
        case .pypi: return 4
        }
    }
}


// MARK: - The recording setup (record.sh / recorder.py), as data

public enum RecordedSetup {
    public static let serverUUID = "11111111-1111-4111-8111-111111111111"

    /// make_server: small.txt and medium.bin. Every hand-written session ran against a fresh
    /// copy of this repo.
    public static let baseServerFiles = ["small.txt", "medium.bin"]

    /// record_client runs these in this order against one server repo.
    public static let clientSessionOrder = [
        "get-small", "get-medium", "copy-to-small", "copy-to-medium", "drop-from-small", "drop-local-small",
        "fsck-from-small", "fsck-from-fast-small", "fsck-from-missing", "copy-to-present", "copy-to-already-have",
        "sync-content", "get-interrupted", "get-resumed",
    ]

    /// Content record.sh adds to the server repo directly (not over P2P) before a session.
    public static func addedOnServer(before session: String) -> [String] {
        switch session {
        case "copy-to-present": return ["same1.txt", "same2.txt"]
        case "sync-content": return ["server-new.txt"]
        default: return []
        }
    }

    /// What the server repo held when a session started.
    public static func serverContent(atStartOf file: TranscriptFile) -> [String]? {
        if file.isHandWritten { return baseServerFiles }
        let base = baseServerFiles
        switch file.name {
        case "get-small", "get-medium", "copy-to-small": return base
        case "copy-to-medium": return base + ["new-small.txt"]
        case "drop-from-small": return base + ["new-small.txt", "new-medium.bin"]
        // drop --from removed new-small.txt
        case "drop-local-small", "fsck-from-small", "fsck-from-fast-small", "fsck-from-missing":
            return base + ["new-medium.bin"]
        case "copy-to-present", "copy-to-already-have":
            return base + ["new-medium.bin", "same1.txt", "same2.txt"]
        case "sync-content":
            return base + ["new-medium.bin", "same1.txt", "same2.txt", "server-new.txt"]
        // sync --content sent client-new.txt and new-small.txt
        case "get-interrupted", "get-resumed":
            return base + ["new-medium.bin", "same1.txt", "same2.txt", "server-new.txt", "client-new.txt", "new-small.txt"]
        default: return nil
        }
    }

    /// Content the client repo has to send.
    public static let clientFilesToSend = ["new-small.txt", "new-medium.bin", "same1.txt", "same2.txt", "client-new.txt"]

    public struct Step {
        public let request: P2PClientMachine.Request
        public let expect: ClientResult
    }

    /// What each recorded git-annex command asked of the remote, and the result it got.
    public static func clientPlan(_ session: String, client: AnnexVersion) -> [Step]? {
        func k(_ f: String) -> AnnexKey { Content.key(f) }
        let ok = ClientResult.outcome(.success(true)), no = ClientResult.outcome(.success(false))
        switch session {
        case "get-small": return [Step(request: .get(k("small.txt"), offset: 0, file: "small.txt"), expect: ok)]
        case "get-medium": return [Step(request: .get(k("medium.bin"), offset: 0, file: "medium.bin"), expect: ok)]
        case "copy-to-small", "copy-to-medium":
            // copy --to asks first, then PUTs.
            let f = session == "copy-to-small" ? "new-small.txt" : "new-medium.bin"
            return [Step(request: .checkPresent(k(f)), expect: no), Step(request: .put(k(f), file: f), expect: ok)]
        case "drop-from-small": return [Step(request: .remove(k("new-small.txt")), expect: ok)]
        case "drop-local-small":
            // numcopies proof: lock the remote copy, drop locally, unlock.
            return [Step(request: .lockContent(k("small.txt")), expect: ok),
                    Step(request: .unlockContent, expect: .outcome(.unlocked))]
        case "fsck-from-small":
            // fsck --from downloads with an empty associated file (`GET 0  KEY`).
            return [Step(request: .checkPresent(k("small.txt")), expect: ok),
                    Step(request: .get(k("small.txt"), offset: 0, file: ""), expect: ok)]
        case "fsck-from-fast-small": return [Step(request: .checkPresent(k("small.txt")), expect: ok)]
        case "fsck-from-missing": return [Step(request: .checkPresent(k("new-small.txt")), expect: no)]
        case "copy-to-present": return [Step(request: .checkPresent(k("same1.txt")), expect: ok)]
        case "copy-to-already-have":
            return [Step(request: .put(k("same2.txt"), file: "same2.txt"), expect: .outcome(.alreadyHave))]
        case "sync-content":
            // 10.20230126 asks CHECKPRESENT before each PUT, 10.20261026 PUTs directly.
            func send(_ f: String) -> [Step] {
                (client == .debian ? [Step(request: .checkPresent(k(f)), expect: no)] : [])
                    + [Step(request: .put(k(f), file: f), expect: ok)]
            }
            return send("client-new.txt") + send("new-small.txt")
                + [Step(request: .get(k("server-new.txt"), offset: 0, file: "server-new.txt"), expect: ok),
                   Step(request: .get(k("small.txt"), offset: 0, file: "small.txt"), expect: ok)]
        case "get-interrupted":
            // The client was killed mid-transfer: the stream ends inside the payload.
            return [Step(request: .get(k("medium.bin"), offset: 0, file: "medium.bin"), expect: .failed(.closed))]
        case "get-resumed":
            // Resumes from the partial the interrupted get left (its size, 65504 in every recording so
            // far, depends on timing; it is the offset the recorded client asked for).
            return [Step(request: .get(k("medium.bin"), offset: 65504, file: "medium.bin"), expect: ok)]
        default: return nil
        }
    }
}

/// Every file content in the recordings.
public enum ClientResult: Equatable, Sendable, CustomStringConvertible {
    case outcome(P2PClientMachine.Outcome)
    case failed(P2PClientMachine.ClientError)
    /// The shell saw the connection end while the machine waited (or could not send).
    case connectionClosed

    public var description: String {
        switch self {
        case .outcome(let o): return "\(o)"
        case .failed(let e): return "failed(\(e))"
        case .connectionClosed: return "connectionClosed"
        }
    }
}

public enum Content {
    public static let files: [String: [UInt8]] = [
        "small.txt": Array("hello\n".utf8),
        "medium.bin": stream(seed: "medium", count: 102400),
        "new-small.txt": Array("world\n".utf8),
        "new-medium.bin": stream(seed: "newmedium", count: 102400),
        "same1.txt": Array("shared one\n".utf8),
        "same2.txt": Array("shared two\n".utf8),
        "server-new.txt": Array("from server\n".utf8),
        "client-new.txt": Array("from client\n".utf8),
        "new.txt": Array("new\n".utf8),   // {NEWKEY} of the hand-written sessions
        "abc.txt": Array("abc".utf8),     // {ABSENTKEY}: never stored anywhere
    ]

    public static func bytes(_ file: String) -> [UInt8] { files[file]! }

    public static func bytes(forKey key: AnnexKey) -> [UInt8]? {
        files.first { Content.key($0.key) == key }?.value
    }

    /// record.sh's `gen SEED N`: SHA-256(seed ‖ i as 8 bytes big-endian) for i = 0, 1, …, cut to N bytes.
    public static func stream(seed: String, count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var i: UInt64 = 0
        while out.count < count {
            let h = HashAlgorithm.sha256.makeHasher()
            h.update(Array(seed.utf8) + withUnsafeBytes(of: i.bigEndian, Array.init))
            out += fromHex(h.finalizeHex())
            i += 1
        }
        return Array(out.prefix(count))
    }

    /// The SHA256E key git-annex gives the file (extension kept).
    public static func key(_ file: String) -> AnnexKey {
        let b = bytes(file)
        let h = HashAlgorithm.sha256.makeHasher()
        h.update(b)
        let ext = file.firstIndex(of: ".").map { String(file[$0...]) } ?? ""
        return AnnexKey(backendName: "SHA256E", size: Int64(b.count), name: h.finalizeHex() + ext)
    }

    /// Does the content match the key (size and, for hash backends, checksum)?
    public static func verify(_ key: AnnexKey, _ bytes: [UInt8]) -> Bool {
        if let size = key.size, size != Int64(bytes.count) { return false }
        switch key.backend.verification {
        case .hash(let alg):
            let h = alg.makeHasher()
            h.update(bytes)
            return h.finalizeHex() == key.backend.expectedDigest(of: key)
        case .sizeOnly: return true
        case .unsupported: return false
        }
    }

    private static func fromHex(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
        return stride(from: 0, to: u.count, by: 2).map { v(u[$0]) << 4 | v(u[$0 + 1]) }
    }
}


// MARK: - Wire items and their comparison

/// One item of a byte stream: a protocol line or a DATA payload.
public enum Wire: Equatable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    case line(String)
    case payload(announced: Int64, [UInt8])

    public init(stringLiteral s: String) { self = .line(s) }

    public var description: String {
        switch self {
        case .line(let s): return "\"" + KeyError.printable(s) + "\"" + (s.unicodeScalars.count > 80 ? " (\(s.utf8.count) bytes)" : "")
        case .payload(let n, let b):
            let h = HashAlgorithm.sha256.makeHasher()
            h.update(b)
            return "<payload \(b.count)/\(n) bytes sha256 \(h.finalizeHex().prefix(16))>"
        }
    }

    /// `self` as a pattern from the deviation table: a line ending in `*` matches by prefix.
    public func matches(_ actual: Wire) -> Bool {
        if case .line(let p) = self, p.hasSuffix("*"), case .line(let a) = actual { return a.hasPrefix(p.dropLast()) }
        return self == actual
    }
}

/// A recorded item and the index of its event in the transcript.
public struct WireItem {
    public let wire: Wire
    public let event: Int

    public init(wire: Wire, event: Int) {
        self.wire = wire
        self.event = event
    }

    public static func items(of t: Transcript, _ d: Transcript.Direction) -> [WireItem] {
        t.events.enumerated().compactMap { i, e in
            switch e {
            case .line(d, let b): return WireItem(wire: .line(String(decoding: b, as: UTF8.self)), event: i)
            case .payload(d, let b, let n, _): return WireItem(wire: .payload(announced: n, b), event: i)
            default: return nil
            }
        }
    }

    public static func find(_ pattern: [Wire], in items: [WireItem], from start: Int) -> Int? {
        guard !pattern.isEmpty, items.count >= pattern.count, start <= items.count - pattern.count else { return nil }
        return (start...(items.count - pattern.count)).first { at in
            pattern.indices.allSatisfy { pattern[$0].matches(items[at + $0].wire) }
        }
    }
}

/// Compares what a machine sent with what was recorded, item by item; the first mismatch,
/// or nil. A recorded payload shorter than announced is where the recording ends (the peer
/// was gone): the sent payload must have the same announced length and start with the
/// recorded bytes, and what was sent afterwards cannot be compared.
public func wireMismatch(_ actual: [Wire], _ expected: [WireItem], _ label: String) -> String? {
    func context() -> String {
        "\n  expected: " + expected.map(\.wire.description).joined(separator: ", ")
            + "\n  actual:   " + actual.map(\.description).joined(separator: ", ")
    }
    for (i, e) in expected.enumerated() {
        guard i < actual.count else { return "\(label): ends after \(i) items, expected \(e.wire)\(context())" }
        if case .payload(let n, let recorded) = e.wire, recorded.count < n {
            guard case .payload(let m, let sent) = actual[i], m == n, sent.starts(with: recorded) else {
                return "\(label) item \(i): \(actual[i]) does not start with the truncated recorded \(e.wire)\(context())"
            }
            return nil
        }
        if actual[i] != e.wire { return "\(label) item \(i): got \(actual[i]), expected \(e.wire)\(context())" }
    }
    if actual.count > expected.count {
        return "\(label): \(actual.count - expected.count) extra items from \(actual[expected.count])\(context())"
    }
    return nil
}

extension Wire {
    /// A byte stream as protocol lines and DATA payloads, split as recorder.py splits it:
    /// after a `DATA n` line the next n bytes (fewer where the stream ends) are a payload.
    /// Bytes after the last newline are a final line.
    public static func items(ofStream bytes: [UInt8]) -> [Wire] {
        var out: [Wire] = []
        var i = 0
        while i < bytes.count {
            let end = bytes[i...].firstIndex(of: 10) ?? bytes.count
            let line = Array(bytes[i..<end])
            out.append(.line(String(decoding: line, as: UTF8.self)))
            i = min(end + 1, bytes.count)
            if let n = Transcript.dataLength(line) {
                let take = Int(min(n, Int64(bytes.count - i)))
                out.append(.payload(announced: n, Array(bytes[i..<i + take])))
                i += take
            }
        }
        return out
    }
}
