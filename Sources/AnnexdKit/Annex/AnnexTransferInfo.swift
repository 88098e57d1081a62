#if canImport(Glibc)
import Glibc
#endif
import Shared

/// One transfer, as git-annex names it (Types/Transfer.hs): direction, the
/// remote's UUID, and the key.
public struct AnnexTransfer: Hashable, Sendable, CustomStringConvertible {
    public enum Direction: String, Sendable, CaseIterable {
        case download, upload
    }

    public var direction: Direction
    public var remoteUUID: String
    public var key: AnnexKey

    public init(_ direction: Direction, remoteUUID: String, key: AnnexKey) {
        self.direction = direction
        self.remoteUUID = remoteUUID
        self.key = key
    }

    public var description: String {
        "\(direction) of \(key) \(direction == .download ? "from" : "to") \(remoteUUID)"
    }

    /// Whether a UUID may become a directory name under .git/annex/transfer. git-annex
    /// only strips '/'; annexd accepts what UUIDs are made of and refuses the rest.
    public static func isValidUUID(_ uuid: String) -> Bool {
        guard !uuid.isEmpty, uuid.utf8.count <= 128, uuid.first != "." else { return false }
        return uuid.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ||
            (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") ||
            b == UInt8(ascii: ".")
        }
    }
}

/// The content of a transfer information file (Logs/Transfer.hs writeTransferInfo,
/// the same in 10.20230126 and 10.2026): a header line with the start time as
/// Haskell shows a POSIXTime (`1796460704.876369057s`) and, once known, a space and
/// the bytes done; then the associated file (empty for none). On unix the pid is
/// not stored: readers ask the lock.
public struct AnnexTransferInfo: Equatable, Sendable {
    /// Seconds since the epoch, as written (`1796460704.876369057s`).
    public var started: String?
    public var bytesComplete: Int64?
    /// The work-tree file the transfer is for, relative to the top of the repository.
    public var file: String?
    /// The process holding the transfer lock (read from the lock, not the file).
    public var pid: Int32?

    public init(started: String?, bytesComplete: Int64? = nil, file: String? = nil, pid: Int32? = nil) {
        self.started = started
        self.bytesComplete = bytesComplete
        // The file comes last and ends at the newline; one with a newline cannot be recorded.
        self.file = file.flatMap { $0.isEmpty || $0.contains("\n") ? nil : $0 }
        self.pid = pid
    }

    /// A transfer starting now.
    public static func startingNow(file: String?) -> AnnexTransferInfo {
        AnnexTransferInfo(started: showPOSIXTime(now()), file: file)
    }

    public var serialized: String {
        var head = started ?? ""
        if let bytesComplete { head += " \(bytesComplete)" }
        return head + "\n" + (file ?? "") + "\n"
    }

    /// Parses git-annex's format (readTransferInfo); nil for a malformed header.
    public init?(parsing text: String, pid: Int32? = nil) {
        let (header, rest) = text.firstIndex(of: "\n").map { (text[..<$0], text[text.index(after: $0)...]) }
            ?? (text[...], ""[...])
        let bits = header.split(separator: " ", omittingEmptySubsequences: false)
        var started: String?
        var bytes: Int64?
        if let t = bits.first, !t.isEmpty {
            guard Self.isPOSIXTime(t) else { return nil }
            started = String(t)
        }
        if bits.count > 1 {
            guard let b = Int64(bits[1]) else { return nil }
            bytes = b
        }
        let file = rest.hasSuffix("\n") ? String(rest.dropLast()) : String(rest)
        self.init(started: started, bytesComplete: bytes, file: file, pid: pid)
    }

    /// `SECONDS[.FRACTION][s]`, as git-annex's parserPOSIXTime accepts.
    static func isPOSIXTime<S: StringProtocol>(_ s: S) -> Bool {
        var body = Substring(s)
        if body.hasSuffix("s") { body = body.dropLast() }
        if body.hasPrefix("-") { body = body.dropFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let digits: (Substring) -> Bool = { p in p.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
        guard let whole = parts.first, !whole.isEmpty, digits(whole) else { return false }
        return parts.count == 1 || digits(parts[1])
    }

    static func now() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts
    }

    /// How Haskell shows a POSIXTime: seconds, the fraction without trailing zeros, then `s`.
    static func showPOSIXTime(_ ts: timespec) -> String {
        var fraction = String(ts.tv_nsec)
        fraction = String(repeating: "0", count: max(0, 9 - fraction.count)) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(ts.tv_sec)" + (fraction.isEmpty ? "" : "." + fraction) + "s"
    }
}

/// A transfer and what its information file says.
public struct TransferRecord: Equatable, Sendable {
    public var transfer: AnnexTransfer
    public var info: AnnexTransferInfo
}
