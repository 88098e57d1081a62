/// The transfer engine's limits, changeable while it runs.

/// A peer's own bandwidth limits (bytes per second; 0: none).
public struct PeerLimits: RPCResultConvertible, Equatable {
    public var uuid: String
    public var downloadLimit: Int64
    public var uploadLimit: Int64
    public init(uuid: String, downloadLimit: Int64 = 0, uploadLimit: Int64 = 0) {
        self.uuid = uuid; self.downloadLimit = downloadLimit; self.uploadLimit = uploadLimit
    }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        uuid = try r.required("uuid")
        downloadLimit = try r.optional("download_limit", default: 0)
        uploadLimit = try r.optional("upload_limit", default: 0)
        try r.finish()
        guard downloadLimit >= 0, uploadLimit >= 0 else {
            throw RPCError.invalidParams(reason: "invalid_limit", "\(at): limits are bytes per second, 0 or more (0: no limit)")
        }
    }
    public var json: JSONValue { .object(["uuid": uuid.json, "download_limit": downloadLimit.json, "upload_limit": uploadLimit.json]) }
    public static let schema = JSONSchema.object([
        .property("uuid", String.self, "The peer repository's UUID"),
        .property("download_limit", Int64.self, required: false, "Bytes per second from this peer (0: no limit)"),
        .property("upload_limit", Int64.self, required: false, "Bytes per second to this peer (0: no limit)"),
    ])
}

/// The transfer settings; in settings.set every member is optional and only those given change.
public struct TransferSettings: RPCResultConvertible, Equatable {
    /// Transfers at once, over all repositories (annex.jobs).
    public var jobs: Int
    public var jobsPerPeer: Int
    /// Transfers of small files (≤ `smallFileSize`) at once with one peer, besides `jobs`: their time is round trips, not bandwidth.
    public var smallJobs: Int
    /// Retries after a failed attempt (annex.retry), each after twice the delay of the one before.
    public var retries: Int
    /// Seconds before the first retry (annex.retry-delay).
    public var retryDelay: Double
    /// A transfer moving no data for this long is stalled and retried (annex.stalldetection); 0: never.
    public var stallSeconds: Double
    /// Fewer bytes than this in `stallSeconds` is a stall (annex.stalldetection's amount; 1: none moved).
    public var stallBytes: Int64
    public var downloadLimit: Int64
    public var uploadLimit: Int64
    public var peers: [PeerLimits]
    /// The members set through settings.set (in the result only); the others come from git config or annexd's defaults.
    public var set: [String]

    /// Files this size or smaller count as small (`smallJobs`).
    public static let smallFileSize: Int64 = 1 << 20

    public init(jobs: Int = 4, jobsPerPeer: Int = 4, smallJobs: Int = 16, retries: Int = 10, retryDelay: Double = 1,
                stallSeconds: Double = 60, stallBytes: Int64 = 1, downloadLimit: Int64 = 0, uploadLimit: Int64 = 0,
                peers: [PeerLimits] = [], set: [String] = []) {
        self.jobs = jobs; self.jobsPerPeer = jobsPerPeer; self.smallJobs = smallJobs; self.retries = retries
        self.retryDelay = retryDelay; self.stallSeconds = stallSeconds; self.stallBytes = stallBytes
        self.downloadLimit = downloadLimit; self.uploadLimit = uploadLimit; self.peers = peers; self.set = set
    }

    /// Reads a full object, or (with `over`) a partial one applied over `over`.
    public init(json: JSONValue, path at: String, over base: TransferSettings?) throws {
        var r = try JSONObjectReader(json, path: at)
        let d = base ?? TransferSettings()
        func value<T: JSONRepresentable>(_ name: String, _ current: T) throws -> T {
            base == nil ? try r.required(name) : try r.optional(name, default: current)
        }
        jobs = try value("jobs", d.jobs)
        jobsPerPeer = try value("jobs_per_peer", d.jobsPerPeer)
        smallJobs = try value("small_jobs", d.smallJobs)
        retries = try value("retries", d.retries)
        retryDelay = try value("retry_delay", d.retryDelay)
        stallSeconds = try value("stall_seconds", d.stallSeconds)
        stallBytes = try value("stall_bytes", d.stallBytes)
        downloadLimit = try value("download_limit", d.downloadLimit)
        uploadLimit = try value("upload_limit", d.uploadLimit)
        let given: [PeerLimits] = try value("peers", base == nil ? d.peers : [])
        var merged = base == nil ? [] : d.peers
        for p in given {
            merged.removeAll { $0.uuid == p.uuid }
            if p.downloadLimit > 0 || p.uploadLimit > 0 { merged.append(p) }
        }
        peers = merged
        set = base == nil ? try r.optional("set", default: []) : d.set
        try r.finish()
        guard (1...64).contains(jobs) else { throw RPCError.invalidParams(reason: "invalid_jobs", "\(at).jobs: between 1 and 64") }
        guard (1...64).contains(jobsPerPeer) else { throw RPCError.invalidParams(reason: "invalid_jobs", "\(at).jobs_per_peer: between 1 and 64") }
        guard (1...64).contains(smallJobs) else { throw RPCError.invalidParams(reason: "invalid_jobs", "\(at).small_jobs: between 1 and 64") }
        guard stallBytes >= 1 else { throw RPCError.invalidParams(reason: "invalid_limit", "\(at).stall_bytes: 1 or more (1: a stall is no byte at all)") }
        guard (0...1000).contains(retries) else { throw RPCError.invalidParams(reason: "invalid_retries", "\(at).retries: between 0 and 1000") }
        guard retryDelay >= 0, stallSeconds >= 0, downloadLimit >= 0, uploadLimit >= 0 else {
            throw RPCError.invalidParams(reason: "invalid_limit", "\(at): delays, stall time and limits are 0 or more (a limit of 0 means none)")
        }
    }

    public init(json: JSONValue, path at: String) throws { try self.init(json: json, path: at, over: nil) }

    public var json: JSONValue {
        .object(["jobs": jobs.json, "jobs_per_peer": jobsPerPeer.json, "small_jobs": smallJobs.json, "retries": retries.json,
                 "retry_delay": retryDelay.json, "stall_seconds": stallSeconds.json, "stall_bytes": stallBytes.json,
                 "download_limit": downloadLimit.json, "upload_limit": uploadLimit.json, "peers": peers.json, "set": set.json])
    }

    /// The members settings.set takes (`set` is the result's own).
    public static let members = ["jobs", "jobs_per_peer", "small_jobs", "retries", "retry_delay", "stall_seconds", "stall_bytes",
                                 "download_limit", "upload_limit", "peers"]

    static func properties(required: Bool) -> [JSONSchema.Property] {
        [
            .property("jobs", Int.self, required: required, "Transfers at once over all repositories, 1-64 (default: annex.jobs in git config, else 4); a repository's own annex.jobs caps its transfers"),
            .property("jobs_per_peer", Int.self, required: required, "Transfers at once with one peer, 1-64 (default: jobs)"),
            .property("small_jobs", Int.self, required: required, "Transfers of small files (1 MiB or less) at once with one peer, besides jobs, 1-64 (default 16): their time is round trips, not bandwidth"),
            .property("retries", Int.self, required: required, "Retries after a failed attempt (default: annex.retry or remote.<name>.annex-retry, else 10)"),
            .property("retry_delay", Double.self, required: required, "Seconds before the first retry; each next waits twice as long (default: annex.retry-delay, else 1)"),
            .property("stall_seconds", Double.self, required: required, "Fewer than stall_bytes moved in this many seconds: the attempt is stalled and retried (default: annex.stalldetection, else 60; 0: never)"),
            .property("stall_bytes", Int64.self, required: required, "See stall_seconds (default: annex.stalldetection's amount, else 1: no byte at all)"),
            .property("download_limit", Int64.self, required: required, "Bytes per second over all downloads (0: no limit)"),
            .property("upload_limit", Int64.self, required: required, "Bytes per second over all uploads (0: no limit)"),
            .property("peers", [PeerLimits].self, required: required, "Per-peer limits (in settings.set: merged by uuid; all zero removes); without one, remote.<name>.annex-bwlimit limits each transfer"),
        ] + (required ? [.property("set", [String].self, "The members set through settings.set; the others come from git config or annexd's defaults")] : [])
    }
    public static let schema = JSONSchema.object(properties(required: true))
}

public enum SettingsGet: RPCMethod {
    public static let method = "settings.get"
    public static let summary = "The transfer settings: concurrency, retries, stall detection, bandwidth limits"
    public typealias Result = TransferSettings
}

public enum SettingsSet: RPCMethod {
    public static let method = "settings.set"
    public static let summary = "Change transfer settings while running (only the members given; null puts one back to its default); returns them all"
    public struct Params: RPCParams, Equatable {
        public var json: JSONValue
        public init(json: JSONValue, path at: String) throws {
            _ = try TransferSettings(json: json, path: at, over: TransferSettings())
            self.json = json
        }
        public init(_ json: JSONValue) { self.json = json }
        public func applied(to base: TransferSettings) throws -> TransferSettings {
            try TransferSettings(json: json, path: "params", over: base)
        }
        public static let schema = JSONSchema.object(TransferSettings.properties(required: false))
    }
    public typealias Result = TransferSettings
}
