/// An asynchronous event (a 650 reply, control-spec §4.1), typed for the ones annexd acts on.
/// Parsing never fails: an event that does not have the documented shape, or one annexd does
/// not type, is `.other` with its keyword and the whole reply.
public enum TorAsyncEvent: Sendable, Equatable {
    /// HS_DESC: an onion descriptor was created, uploaded, fetched, or failed.
    case hsDesc(TorHSDescEvent)
    /// STATUS_CLIENT … BOOTSTRAP: bootstrap progress or a problem.
    case bootstrap(TorBootstrapStatus)
    /// Any other event (CONF_CHANGED, STATUS_GENERAL, …): its keyword (e.g. "CONF_CHANGED").
    case other(keyword: String, reply: TorControlReply)

    public init(reply: TorControlReply) {
        let first = reply.lines[0].text
        let keyword = String(first.prefix { $0 != " " })
        switch keyword {
        case "HS_DESC":
            if let event = try? TorHSDescEvent(line: first) { self = .hsDesc(event); return }
        case "STATUS_CLIENT":
            if let status = try? TorBootstrapStatus(statusLine: first.dropFirst(keyword.count)) { self = .bootstrap(status); return }
        default:
            break
        }
        self = .other(keyword: keyword, reply: reply)
    }

    /// The event's keyword ("HS_DESC", "STATUS_CLIENT", ...).
    public var keyword: String {
        switch self {
        case .hsDesc: return "HS_DESC"
        case .bootstrap: return "STATUS_CLIENT"
        case .other(let keyword, _): return keyword
        }
    }
}

/// `650 HS_DESC Action HSAddress AuthType HsDir [DescriptorID] [REASON=…] [REPLICA=…] [HSDIR_INDEX=…]`
/// (control-spec §4.1.25). UPLOADED means the service is reachable through that directory.
public struct TorHSDescEvent: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        case requested, upload, received, uploaded, ignore, failed, created
        case other(String)

        init(_ name: String) {
            switch name {
            case "REQUESTED": self = .requested
            case "UPLOAD": self = .upload
            case "RECEIVED": self = .received
            case "UPLOADED": self = .uploaded
            case "IGNORE": self = .ignore
            case "FAILED": self = .failed
            case "CREATED": self = .created
            default: self = .other(name)
            }
        }
    }

    public var action: Action
    /// The service id (56 base32 characters, no ".onion"), or "UNKNOWN".
    public var address: String
    public var authType: String
    /// The directory's LongName/fingerprint, or "UNKNOWN".
    public var hsDir: String
    public var descriptorID: String?
    /// Why a FAILED happened (BAD_DESC, UPLOAD_REJECTED, NOT_FOUND, QUERY_NO_HSDIR, ...).
    public var reason: String?
    public var fields: TorReplyFields

    /// Parses `HS_DESC …` (the line after "650 ").
    public init(line: String) throws(TorControlError) {
        let fields = try TorReplyFields(line)
        let words = fields.positional
        guard words.count >= 5, words[0] == "HS_DESC" else {
            throw .protocolViolation("HS_DESC event without action, address, auth type and directory: \(line)")
        }
        action = Action(words[1])
        address = words[2]
        authType = words[3]
        hsDir = words[4]
        descriptorID = words.count > 5 ? words[5] : nil
        reason = fields["REASON"]
        self.fields = fields
    }
}

/// Bootstrap status from `650 STATUS_CLIENT <severity> BOOTSTRAP PROGRESS=… TAG=… SUMMARY="…"`
/// or from `GETINFO status/bootstrap-phase` (the same text without STATUS_CLIENT), with tor's
/// WARNING / REASON / COUNT / RECOMMENDATION when something goes wrong (control-spec §4.1.10).
public struct TorBootstrapStatus: Sendable, Equatable {
    /// NOTICE for progress, WARN for a problem.
    public var severity: String
    /// 0...100.
    public var progress: Int
    /// The phase's stable tag (e.g. "conn", "handshake", "done").
    public var tag: String
    /// A human summary of what tor does next.
    public var summary: String
    public var warning: String?
    public var reason: String?
    public var count: Int?
    /// "ignore" or "warn" (then tell the user).
    public var recommendation: String?
    public var fields: TorReplyFields

    /// True for a WARN-severity report (a problem, not progress).
    public var isProblem: Bool { severity == "WARN" || severity == "ERR" }

    /// Parses `<severity> BOOTSTRAP k=v…` (leading spaces allowed).
    public init(statusLine: some StringProtocol) throws(TorControlError) {
        let fields = try TorReplyFields(statusLine)
        guard fields.positional.count >= 2, fields.positional[1] == "BOOTSTRAP",
              let progressText = fields["PROGRESS"], let progress = Int(progressText) else {
            throw .protocolViolation("not a BOOTSTRAP status: \(statusLine)")
        }
        severity = fields.positional[0]
        self.progress = progress
        tag = fields["TAG"] ?? ""
        summary = fields["SUMMARY"] ?? ""
        warning = fields["WARNING"]
        reason = fields["REASON"]
        count = fields["COUNT"].flatMap { Int($0) }
        recommendation = fields["RECOMMENDATION"]
        self.fields = fields
    }
}
