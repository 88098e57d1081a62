/// How annex-cli shows transfers, as pure text: sizes, rates and times; one plain line per
/// state change (`get foo.jpg from nas: done (1.2 MiB)`); a progress line per active transfer
/// for a terminal; the final summary. No I/O: `TransferBoard` returns the bytes to write.

public enum TransferRendering {
    // MARK: Numbers

    /// Bytes in binary units: `512 B`, `1.2 MiB`, `23.4 GiB`, `512 MiB` (one decimal below 100).
    public static func bytes(_ n: Int64) -> String {
        if n < 1024 { return "\(n) B" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(n) / 1024
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        // Rounding may reach 1024.0 of a unit: show it as 1.0 of the next.
        if value >= 1023.95 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return "\(oneDecimal(value, below: 100)) \(units[unit])"
    }

    /// A rate: `1.2 MiB/s`; `--` when nothing moves.
    public static func rate(_ bytesPerSecond: Double) -> String {
        guard bytesPerSecond.isFinite, bytesPerSecond >= 1 else { return "--" }
        return bytes(Int64(bytesPerSecond)) + "/s"
    }

    /// A duration: `45s`, `3m04s`, `2h05m`; `--` when unknown; `>99h` beyond.
    public static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0 else { return "--" }
        let s = Int(seconds.rounded(.up))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + twoDigits(s % 60) + "s" }
        if s < 100 * 3600 { return "\(s / 3600)h" + twoDigits(s / 60 % 60) + "m" }
        return ">99h"
    }

    /// `[=====>    ]` of `width` cells inside the brackets; `[    ?     ]` when the size is unknown.
    public static func bar(_ fraction: Double?, width: Int) -> String {
        let w = max(1, width)
        guard let fraction, fraction.isFinite else {
            let mark = "?"
            let left = (w - 1) / 2
            return "[" + String(repeating: " ", count: left) + mark + String(repeating: " ", count: w - 1 - left) + "]"
        }
        let f = min(1, max(0, fraction))
        let filled = Int((f * Double(w)).rounded(.down))
        if filled >= w { return "[" + String(repeating: "=", count: w) + "]" }
        return "[" + String(repeating: "=", count: filled) + ">" + String(repeating: " ", count: w - filled - 1) + "]"
    }

    /// The part done, when the size is known.
    public static func fraction(_ t: TransferInfo) -> Double? {
        guard let size = t.size, size > 0 else { return t.size == 0 ? 1 : nil }
        return Double(t.bytes) / Double(size)
    }

    // MARK: Names

    /// What the transfer is of: its file, else its key.
    public static func name(_ t: TransferInfo) -> String { t.file ?? t.key }

    /// The peer as people know it: its remote name, else the start of its UUID.
    public static func peerName(_ p: TransferPeer) -> String { p.name ?? String(p.uuid.prefix(8)) }

    /// `get foo.jpg from nas`, `copy foo.jpg to nas`, `get foo.jpg` (no peer chosen yet).
    public static func subject(_ t: TransferInfo) -> String {
        let verb = t.direction == .get ? "get" : "copy"
        guard let peer = t.peer else { return "\(verb) \(name(t))" }
        return "\(verb) \(name(t)) \(t.direction == .get ? "from" : "to") \(peerName(peer))"
    }

    // MARK: Lines

    /// What happened to a transfer, after its subject: `done (1.2 MiB)`,
    /// `failed: no route (peer_unreachable); retrying in 30s`, `started (attempt 2)`.
    public static func status(_ t: TransferInfo, now: Double) -> String {
        let why = t.error.map { ": \($0.message) (\($0.code))" } ?? ""
        // A failed attempt that will be retried (the daemon may show it queued or failed).
        if t.nextRetry != nil && (t.state == .queued || t.state == .failed) { return "failed" + why + "; " + retryIn(t, now: now) }
        switch t.state {
        case .queued: return t.error.map { "queued (last attempt: \($0.message) (\($0.code)))" } ?? "queued"
        case .active: return t.attempt > 1 ? "started (attempt \(t.attempt))" : "started"
        case .verifying: return "verifying"
        case .paused: return "paused" + (t.bytes > 0 ? " at \(bytes(t.bytes))" : "")
        case .done: return "done (\(bytes(t.size ?? t.bytes)))"
        case .canceled: return "canceled"
        case .failed: return "failed" + why
        }
    }

    private static func retryIn(_ t: TransferInfo, now: Double) -> String {
        guard let at = t.nextRetry else { return "" }
        return "retrying in \(duration(max(0, at - now)))"
    }

    /// One plain line for a state change: `get foo.jpg from nas: done (1.2 MiB)`.
    public static func line(_ t: TransferInfo, now: Double) -> String { "\(subject(t)): \(status(t, now: now))" }

    /// A terminal's line for an unsettled transfer, at most `width` columns:
    /// `photos/a.jpg  [=====>    ]  45%  1.2 MiB/2.6 MiB  3.4 MiB/s  ETA 12s`.
    public static func progressLine(_ t: TransferInfo, width: Int, now: Double) -> String {
        let tail: String
        if t.state == .active {
            let f = fraction(t)
            let pct = f.map { "\(Int(($0 * 100).rounded(.down)))%" } ?? "--"
            let amount = t.size.map { "\(bytes(t.bytes))/\(bytes($0))" } ?? bytes(t.bytes)
            tail = "\(bar(f, width: 20)) \(pad(pct, 4))  \(amount)  \(rate(t.rate))  ETA \(duration(t.eta))"
        } else {
            tail = status(t, now: now)
        }
        let head = (t.direction == .get ? "get " : "copy ") + name(t)
        return fit(head, tail, width: width)
    }

    /// `head  tail` in at most `width` columns: the head loses its start first (`…s/a.jpg`),
    /// keeping at least 12 columns; then the whole line is cut.
    public static func fit(_ head: String, _ tail: String, width: Int) -> String {
        let room = width - tail.count - 2
        var h = head
        if h.count > room {
            let keep = max(12, room)
            h = h.count > keep ? "…" + String(h.suffix(keep - 1)) : h
        }
        let line = h + "  " + tail
        return line.count > width ? String(line.prefix(max(0, width))) : line
    }

    // MARK: Summary

    /// The end of a get or copy for people: the first line (`3 done (4.5 MiB)`,
    /// `2 done, 1 failed`) and one line per transfer that did not end done, with why.
    public static func summary(_ o: TransferWatch.Outcome, now: Double) -> [String] {
        var parts = ["\(o.done.count) done" + (o.done.isEmpty ? "" : " (\(bytes(o.done.reduce(0) { $0 + ($1.size ?? $1.bytes) })))")]
        if !o.failed.isEmpty { parts.append("\(o.failed.count) failed") }
        if !o.canceled.isEmpty { parts.append("\(o.canceled.count) canceled") }
        if !o.pending.isEmpty { parts.append("\(o.pending.count) not finished") }
        return [parts.joined(separator: ", ")] + (o.failed + o.canceled + o.pending).map { "  " + line($0, now: now) }
    }

    /// A table row for `annex-cli transfers`: ID, STATE, DIRECTION, PEER, FILE, PROGRESS.
    public static func row(_ t: TransferInfo) -> [String] {
        let progress = t.size.map { "\(bytes(t.bytes))/\(bytes($0))" } ?? bytes(t.bytes)
        return [t.id, t.state.rawValue, t.direction.rawValue, t.peer.map(peerName) ?? "-", name(t), progress]
    }

    // MARK: Drops

    /// One line per key of a content.drop: `drop a.jpg: ok`, `drop a.jpg from nas: failed: … (unsafe_drop)`,
    /// `drop a.jpg: not present`. `from`: the peer as the user named it (nil: here).
    public static func dropLine(_ r: DropResult, from: String?) -> String {
        let subject = "drop \(r.file ?? r.key ?? "?")" + (from.map { " from \($0)" } ?? "")
        if r.dropped { return subject + ": ok" }
        guard let e = r.error else { return subject + ": not dropped" }
        if e.code == "not_present" { return subject + ": not present" }
        return subject + ": failed: \(e.message) (\(e.code))"
    }

    /// A drop succeeded when every key is gone (dropped now, or was not there).
    public static func dropSucceeded(_ results: [DropResult]) -> Bool {
        results.allSatisfy { $0.dropped || $0.error?.code == "not_present" }
    }

    public static let tableHeader = ["ID", "STATE", "DIR", "PEER", "FILE", "PROGRESS"]

    // MARK: Helpers

    private static func oneDecimal(_ v: Double, below limit: Double) -> String {
        let tenths = Int((v * 10).rounded())
        if tenths >= Int(limit * 10) { return "\(Int(v.rounded()))" }
        return "\(tenths / 10).\(tenths % 10)"
    }

    private static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    private static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
}

/// A terminal area redrawn in place: lines that stay (state changes) scroll up above it,
/// and the live lines (one per unsettled transfer) are rewritten each frame. Each frame
/// moves the cursor up over the previous live lines and clears to the end of the screen.
public struct TransferBoard: Sendable, Equatable {
    /// Columns; live lines are cut to `width - 1` so none wraps (wrapping would break the redraw).
    public var width: Int
    /// At most this many live lines; the rest are counted in a last line.
    public var maxLines: Int
    private var shown = 0

    public init(width: Int, maxLines: Int = 10) {
        self.width = max(20, width)
        self.maxLines = max(1, maxLines)
    }

    /// The text for one frame: `permanent` lines, then the live lines of `unsettled`.
    public mutating func frame(permanent: [String], unsettled: [TransferInfo], now: Double) -> String {
        var live = unsettled.prefix(maxLines).map { TransferRendering.progressLine($0, width: width - 1, now: now) }
        if unsettled.count > maxLines { live.append("… and \(unsettled.count - maxLines) more") }
        return frame(permanent: permanent, live: live)
    }

    /// The text for one frame of given lines (live lines are cut to the width).
    public mutating func frame(permanent: [String], live: [String]) -> String {
        var out = shown > 0 ? "\r\u{1B}[\(shown)A\u{1B}[J" : ""
        for l in permanent { out += l + "\n" }
        for l in live { out += (l.count >= width ? String(l.prefix(width - 1)) : l) + "\n" }
        shown = live.count
        return out
    }
}
