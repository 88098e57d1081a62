import Shared

/// git-annex's own transfer settings, as one repository's git config holds them (local, then
/// global and system, as `git config` reads them), parsed as git-annex parses them. They are
/// annexd's defaults where `settings.set` has not set a value:
/// `annex.jobs` ("cpus" or a number), `annex.retry`, `annex.retry-delay`,
/// `annex.stalldetection` (`true`, `false`, or `AMOUNT/DURATION` such as `1KiB/30s`),
/// `annex.bwlimit` (`1MiB`, per transfer, as git-annex applies it) and their
/// `remote.<name>.annex-…` forms (the remote's wins); the `-download`/`-upload` forms of
/// bwlimit and stalldetection narrow them to one direction.
struct TransferGitConfig: Sendable, Equatable {
    /// When a transfer counts as stalled (annex.stalldetection).
    enum Stall: Sendable, Equatable {
        case never
        /// Fewer than `bytes` moved in the last `seconds` (at least one byte: `0KiB/60s` means none moved).
        case below(bytes: Int64, seconds: Double)
    }

    /// The settings that can be given per remote.
    struct Values: Sendable, Equatable {
        var retries: Int?
        var retryDelay: Double?
        var stall: [TransferDirection: Stall] = [:]
        var bandwidth: [TransferDirection: Int64] = [:]
    }

    var jobs: Int?
    var repo = Values()
    /// By remote name.
    var remotes: [String: Values] = [:]
    /// Values git-annex would refuse, with why (annexd logs them and uses its own default).
    var ignored: [String] = []

    /// The `git config --get-regexp` pattern that lists every setting read here.
    static let pattern = "^(annex\\.|remote\\..*\\.annex-)(jobs|retry|retry-delay|stalldetection(-download|-upload)?|bwlimit(-download|-upload)?)$"

    /// From `git config --get-regexp` output ("name value" lines); `cpus` is what `annex.jobs=cpus` means.
    init(listing: String, cpus: Int) {
        for line in listing.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            let name = String(parts[0]), value = parts.count > 1 ? String(parts[1]) : "true"
            if name == "annex.jobs" {
                jobs = value.lowercased() == "cpus" ? cpus : Int(value).flatMap { $0 > 0 ? $0 : nil }
                if jobs == nil { ignored.append("\(name)=\(value): a number of jobs or \"cpus\"") }
                continue
            }
            let setting: String
            if name.hasPrefix("annex.") {
                setting = String(name.dropFirst("annex.".count))
                if !set(setting, value, in: &repo) { ignored.append("\(name)=\(value)") }
            } else if name.hasPrefix("remote."), let dot = name.range(of: ".annex-", options: .backwards) {
                let remote = String(name[name.index(name.startIndex, offsetBy: "remote.".count)..<dot.lowerBound])
                setting = String(name[dot.upperBound...])
                var values = remotes[remote] ?? Values()
                if set(setting, value, in: &values) { remotes[remote] = values } else { ignored.append("\(name)=\(value)") }
            }
        }
    }

    init() {}

    /// The values that apply to a transfer with the remote named `remote`: the remote's own, else the repository's.
    func values(remote: String?) -> Values {
        guard let remote, let r = remotes[remote] else { return repo }
        var v = repo
        if let n = r.retries { v.retries = n }
        if let d = r.retryDelay { v.retryDelay = d }
        // A remote's plain setting overrides the repository's for both directions.
        for d in [TransferDirection.get, .put] {
            if let s = r.stall[d] { v.stall[d] = s }
            if let b = r.bandwidth[d] { v.bandwidth[d] = b }
        }
        return v
    }

    /// Applies one setting; false when git-annex would not parse its value.
    private func set(_ setting: String, _ value: String, in v: inout Values) -> Bool {
        switch setting {
        case "retry":
            guard let n = Int(value), n >= 0 else { return false }
            v.retries = n
        case "retry-delay":
            guard let d = Self.duration(value) else { return false }
            v.retryDelay = d
        case "stalldetection", "stalldetection-download", "stalldetection-upload":
            guard let s = Self.stall(value) else { return false }
            for d in Self.directions(setting) where setting != "stalldetection" || v.stall[d] == nil { v.stall[d] = s }
        case "bwlimit", "bwlimit-download", "bwlimit-upload":
            let amount = value.hasSuffix("/s") ? String(value.dropLast(2)) : value
            guard let b = Self.size(amount) else { return false }
            for d in Self.directions(setting) where setting != "bwlimit" || v.bandwidth[d] == nil { v.bandwidth[d] = b }
        default:
            return false
        }
        return true
    }

    private static func directions(_ setting: String) -> [TransferDirection] {
        setting.hasSuffix("-download") ? [.get] : setting.hasSuffix("-upload") ? [.put] : [.get, .put]
    }

    // MARK: git-annex's value syntax

    static func stall(_ text: String) -> Stall? {
        switch text.lowercased() {
        case "false", "no", "off", "0": return .never
        // "true": git-annex probes; annexd's probe is its default, no bytes for 60 s.
        case "true", "yes", "on", "1": return .below(bytes: 1, seconds: 60)
        default:
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let bytes = size(parts[0]), let seconds = duration(parts[1]), seconds > 0 else { return nil }
            return .below(bytes: max(1, bytes), seconds: seconds)
        }
    }

    /// "1MiB", "100kB", "0.5 GB", "4096": bytes (Utility/DataUnits: unit names case-insensitive).
    static func size(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let number = t.prefix { $0.isNumber || $0 == "." }
        let unit = t.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
        guard let n = Double(number), n >= 0 else { return nil }
        let (ki, mi, gi, ti): (Double, Double, Double, Double) = (1024, 1_048_576, 1_073_741_824, 1_099_511_627_776)
        let units: [String: Double] = [
            "": 1, "b": 1, "byte": 1, "bytes": 1,
            "kb": 1e3, "kilobyte": 1e3, "kilobytes": 1e3, "mb": 1e6, "megabyte": 1e6, "megabytes": 1e6,
            "gb": 1e9, "gigabyte": 1e9, "gigabytes": 1e9, "tb": 1e12, "terabyte": 1e12, "terabytes": 1e12,
            "kib": ki, "kibibyte": ki, "kibibytes": ki, "mib": mi, "mebibyte": mi, "mebibytes": mi,
            "gib": gi, "gibibyte": gi, "gibibytes": gi, "tib": ti, "tebibyte": ti, "tebibytes": ti,
        ]
        guard let scale = units[unit] else { return nil }
        return Int64(n * scale)
    }

    /// "30s", "1m30s", "2h", "1d", or a plain number of seconds (Utility/HumanTime).
    static func duration(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if let plain = Double(t), plain >= 0 { return plain }
        let scale: [Character: Double] = ["y": 31_536_000, "d": 86_400, "h": 3_600, "m": 60, "s": 1]
        var total = 0.0, digits = ""
        for c in t {
            if c.isNumber { digits.append(c); continue }
            guard let s = scale[c], let n = Double(digits) else { return nil }
            total += n * s
            digits = ""
        }
        return digits.isEmpty && !t.isEmpty ? total : nil
    }
}
