#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared

/// `tor.enableSystem`: the privileged step, through annex-tor-helper. Either a control
/// socket for a group (annexd then uses system tor's control port), or a repository's hidden
/// service as `git annex enable-tor` makes it, which annexd then serves.
public final class TorEnableService: Sendable {
    public enum TorEnableError: ServiceError {
        case noTorGroup
        case helperAnswer(String)
        case adoptionFailed(onion: String, repo: String)

        public var kind: FailureKind {
            switch self {
            case .noTorGroup: .invalidArgument
            case .helperAnswer: .internalFailure
            case .adoptionFailed: .unavailable
            }
        }
        public var reason: String {
            switch self {
            case .noTorGroup: "no_tor_group"
            case .helperAnswer: "helper_failed"
            case .adoptionFailed: "adoption_failed"
            }
        }
        public var description: String {
            switch self {
            case .noTorGroup: "cannot tell tor's group from /var/lib/tor: pass params.group (annex-cli tor enable --system --group G)"
            case .helperAnswer(let json): "annex-tor-helper answered without onion and port: \(json)"
            case .adoptionFailed(let onion, let repo):
                "system tor publishes \(onion) for \(repo), but annexd cannot serve its socket (see annexd's log)"
            }
        }
    }

    let repos: RepositoryService
    let creds: CredsStore
    let events: EventLog
    let runner: TorHelperRunner

    init(repos: RepositoryService, creds: CredsStore, events: EventLog, runner: TorHelperRunner) {
        self.repos = repos
        self.creds = creds
        self.events = events
        self.runner = runner
    }

    /// Gives system tor a control socket for `group` (default: tor's own group).
    public func enableControlSocket(group: String?) async throws -> TorEnableSystem.Result {
        let group = try group ?? Self.torGroup()
        let runner = self.runner
        let outcome = try await Blocking.run { try runner.run(["enable-control-socket", "--group", group]) }
        let socket = outcome.json["socket"]?.stringValue ?? "/run/tor/control"
        var message = "system tor now has a control socket at \(socket) for group \(group); annexd uses it from its next connection attempt (--tor auto or --tor system)."
        if !Self.isMember(ofGroup: group) {
            message += " You are not in group \(group): add yourself (`sudo adduser $USER \(group)`) and log in again."
        }
        events.publish(TorControlSocketEnabled(socket: socket, group: group))
        return .init(action: "enable-control-socket", changed: outcome.json["changed"]?.boolValue ?? true,
                     onion: nil, port: nil, socket: socket, message: message)
    }

    /// Adds `selector`'s hidden service to the system torrc, then serves it.
    public func enableHiddenService(_ selector: String) async throws -> TorEnableSystem.Result {
        let repo = try repos.lookup(selector)
        let runner = self.runner
        let outcome = try await Blocking.run {
            try runner.run(["add-hidden-service", "--uid", "\(getuid())", "--repo-uuid", repo.uuid])
        }
        guard let onion = outcome.json["onion"]?.stringValue, let port = outcome.json["port"]?.intValue,
              let address = try? TorAnnexAddress(parsing: "\(TorAnnexAddress.scheme)\(onion):\(port)", token: .forbidden) else {
            throw TorEnableError.helperAnswer(outcome.json.serialized())
        }
        // As git annex enable-tor does: the address goes to creds/p2paddrs, then the
        // repository is served on the socket system tor forwards to.
        try creds.recordOwnAddress(try repos.openRepo(repo), address)
        try await repos.reserve(repo)
        let served = try repos.info(repo)
        guard served.onion == address.onion else { throw TorEnableError.adoptionFailed(onion: address.onion, repo: repo.path) }
        events.publish(TorHiddenServiceEnabled(repo: RepositoryService.eventRepo(repo), onion: address.onion, port: address.port))
        return .init(action: "add-hidden-service", changed: outcome.json["changed"]?.boolValue ?? true, onion: address.onion,
                     port: address.port, socket: served.socket,
                     message: "system tor publishes \(address.onion) for \(repo.path), and annexd serves it on \(served.socket); `annex-cli invite` now gives this address")
    }

    /// The group of tor's data directory (Debian: debian-tor).
    static func torGroup() throws(TorEnableError) -> String {
        var st = stat()
        guard stat("/var/lib/tor", &st) == 0, let gr = getgrgid(st.st_gid), let name = gr.pointee.gr_name else {
            throw .noTorGroup
        }
        return String(cString: name)
    }

    static func isMember(ofGroup name: String) -> Bool {
        guard let gr = getgrnam(name) else { return false }
        let gid = gr.pointee.gr_gid
        if getegid() == gid || geteuid() == 0 { return true }
        let n = getgroups(0, nil)
        var groups = [gid_t](repeating: 0, count: Int(max(n, 0)))
        return getgroups(n, &groups) >= 0 && groups.contains(gid)
    }
}
