#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared

extension Daemon {
    /// `tor.enableSystem`: the privileged step, through annex-tor-helper.
    func enableSystemTor(_ params: TorEnableSystem.Params) async throws -> TorEnableSystem.Result {
        let runner = config.torHelper
        guard let selector = params.repo else {
            let group = try params.group ?? Self.torGroup()
            let outcome = try await Blocking.run { try runner.run(["enable-control-socket", "--group", group]) }
            let socket = outcome.json["socket"]?.stringValue ?? "/run/tor/control"
            var message = "system tor now has a control socket at \(socket) for group \(group); annexd uses it from its next connection attempt (--tor auto or --tor system)."
            if !Self.isMember(ofGroup: group) {
                message += " You are not in group \(group): add yourself (`sudo adduser $USER \(group)`) and log in again."
            }
            publish("tor.systemEnabled", ["socket": .string(socket), "group": .string(group)])
            return .init(action: "enable-control-socket", changed: outcome.json["changed"]?.boolValue ?? true,
                         onion: nil, port: nil, socket: socket, message: message)
        }
        let repo = try lookup(selector)
        let outcome = try await Blocking.run {
            try runner.run(["add-hidden-service", "--uid", "\(getuid())", "--repo-uuid", repo.uuid])
        }
        guard let onion = outcome.json["onion"]?.stringValue, let port = outcome.json["port"]?.intValue else {
            throw RPCError(.internalError, message: "annex-tor-helper answered without onion and port: \(outcome.json)", reason: "helper_failed")
        }
        // As git annex enable-tor does: the address goes to creds/p2paddrs, then the
        // repository is served on the socket system tor forwards to.
        try recordOwnAddress(repo, address: "tor-annex::\(onion):\(Int(port))")
        await tor?.remove(uuid: repo.uuid)
        try restartListener(repo)
        if let tor, let service = try onionService(repo) { await tor.add(service) }
        let served = try info(repo)
        guard served.onion == onion else {
            throw RPCError(.unavailable, message: "system tor publishes \(onion) for \(repo.path), but annexd cannot serve its socket (see annexd's log)",
                           reason: "adoption_failed")
        }
        publish("tor.systemEnabled", ["repo": .string(repo.path), "onion": .string(onion), "port": .int(port)])
        return .init(action: "add-hidden-service", changed: outcome.json["changed"]?.boolValue ?? true, onion: onion, port: Int(port),
                     socket: served.socket,
                     message: "system tor publishes \(onion) for \(repo.path), and annexd serves it on \(served.socket); `annex-cli invite` now gives this address")
    }

    /// The group of tor's data directory (Debian: debian-tor).
    static func torGroup() throws(RPCError) -> String {
        var st = stat()
        guard stat("/var/lib/tor", &st) == 0, let gr = getgrgid(st.st_gid), let name = gr.pointee.gr_name else {
            throw RPCError.invalidParams(reason: "no_tor_group", "cannot tell tor's group from /var/lib/tor: pass params.group (annex-cli tor enable --system --group G)")
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
