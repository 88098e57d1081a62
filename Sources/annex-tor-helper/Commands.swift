#if canImport(Glibc)
import Glibc
#endif
import TorrcKit

/// The three commands. Each returns the success object or throws a HelperFailure.
struct Commands {
    let options: HelperOptions
    let file: TorrcFile
    let tor: Tor

    var transaction: Transaction { Transaction(file: file, tor: tor, timeout: options.timeout) }
    var torrc: Torrc { Torrc(bytes: file.original) }

    func run() throws(HelperFailure) -> JSONObject {
        switch options.command {
        case .addHiddenService: return try addHiddenService()
        case .removeHiddenService: return try removeHiddenService()
        case .enableControlSocket: return try enableControlSocket()
        }
    }

    // MARK: add-hidden-service

    func addHiddenService() throws(HelperFailure) -> JSONObject {
        guard let layout = options.layout else { throw .usage("add-hidden-service needs --uid and --repo-uuid") }
        if let existing = try existingPort(layout) {
            _ = try Directories.prepareSocketDir(layout)    // re-asserted, as git-annex does
            let onion = try hostnameOfExisting(layout)
            return result(layout, port: existing, onion: onion, changed: false)
        }
        let port = try choosePort()
        guard Directories.isDirectory(layout.torDataRoot) else {
            // tor --verify-config accepts a HiddenServiceDir whose parent is missing, but
            // tor dies when it reloads such a torrc: check it here instead.
            throw HelperFailure(.verifyFailed, "tor data root \(layout.torDataRoot) is not a directory: "
                                + "tor could not create \(layout.hiddenServiceDir) and would exit on reload")
        }
        var new = torrc
        new.addHiddenService(directory: layout.hiddenServiceDir, ports: [layout.port(port)])
        let undo = try Directories.prepareSocketDir(layout)
        var onion: String?
        try transaction.commit(new, undo: undo, waitingFor: layout.hostnameFile) {
            onion = Self.readHostname(layout.hostnameFile)
            return onion != nil
        }
        return result(layout, port: port, onion: onion, changed: true)
    }

    /// The port of this repository's service if torrc has it in enable-tor's layout; a
    /// conflict if it has it otherwise or --port asks for another port.
    func existingPort(_ layout: EnableTorLayout) throws(HelperFailure) -> Int? {
        let torrc = self.torrc
        guard let block = torrc.hiddenService(directory: layout.hiddenServiceDir)
                ?? torrc.hiddenService(socket: layout.socketFile) else { return nil }
        guard Torrc.samePath(block.directory, layout.hiddenServiceDir),
              let port = block.ports.first(where: { $0.unixSocket.map { Torrc.samePath($0, layout.socketFile) } ?? false })?.virtualPort
        else {
            throw HelperFailure(.conflict, "torrc already has a hidden service for uid \(layout.uid) and repo \(layout.repoUUID) "
                                + "in another layout (HiddenServiceDir \(block.directory)); edit it by hand")
        }
        if let wanted = options.port, wanted != port {
            throw HelperFailure(.conflict, "the hidden service exists with port \(port), not \(wanted); remove it first to change the port")
        }
        return port
    }

    /// --port if it is free, else a random free port in 1025-65534 (as git-annex picks).
    func choosePort() throws(HelperFailure) -> Int {
        let used = torrc.usedHiddenServicePorts
        if let wanted = options.port {
            guard !used.contains(wanted) else {
                throw HelperFailure(.conflict, "port \(wanted) is already used by another hidden service in torrc")
            }
            return wanted
        }
        for _ in 0..<1000 {
            let p = Int.random(in: EnableTorLayout.randomPortRange)
            if !used.contains(p) { return p }
        }
        throw HelperFailure(.conflict, "no free hidden service port found")
    }

    /// The onion of a service torrc already has; reloads tor once if its hostname is missing
    /// (torrc edited but tor not reloaded). The torrc is not changed, so nothing to roll back.
    func hostnameOfExisting(_ layout: EnableTorLayout) throws(HelperFailure) -> String {
        if let onion = Self.readHostname(layout.hostnameFile) { return onion }
        try tor.reloadNow()
        guard let onion = Tor.wait(seconds: options.timeout, { Self.readHostname(layout.hostnameFile) }) else {
            throw HelperFailure(.timeout, "torrc has the service but tor did not create \(layout.hostnameFile) within \(options.timeout) s")
        }
        return onion
    }

    /// A complete hostname file: 56 base32 characters, ".onion", newline.
    static func readHostname(_ path: String) -> String? {
        guard let bytes = try? TorrcFile.readFile(path) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasSuffix(".onion\n") else { return nil }
        let onion = String(text.dropLast())
        let label = onion.dropLast(6)
        guard label.count == 56, label.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x32...0x37).contains($0) }) else { return nil }
        return onion
    }

    func result(_ layout: EnableTorLayout, port: Int, onion: String?, changed: Bool) -> JSONObject {
        var o = JSONObject()
        o.set("action", options.command.rawValue)
        o.set("changed", changed)
        o.set("onion", onion)
        o.set("port", port)
        o.set("address", onion.map { "tor-annex::\($0):\(port)" })
        o.set("hidden_service_dir", layout.hiddenServiceDir)
        o.set("socket", layout.socketFile)
        o.set("torrc", file.path)
        if changed { o.set("backup", file.backupPath) }
        return o
    }

    // MARK: remove-hidden-service

    /// Removes the block; the HiddenServiceDir (the onion's key) and the socket directory
    /// stay, so adding the service again brings back the same address.
    func removeHiddenService() throws(HelperFailure) -> JSONObject {
        guard let layout = options.layout else { throw .usage("remove-hidden-service needs --uid and --repo-uuid") }
        var new = torrc
        let change = new.removeHiddenService(directory: layout.hiddenServiceDir)
        if change == .changed {
            try transaction.commit(new, undo: {}, waitingFor: "nothing") { true }
        }
        var o = JSONObject()
        o.set("action", options.command.rawValue)
        o.set("changed", change == .changed)
        o.set("hidden_service_dir", layout.hiddenServiceDir)
        o.set("hidden_service_dir_kept", Directories.isDirectory(layout.hiddenServiceDir))
        o.set("socket", layout.socketFile)
        o.set("torrc", file.path)
        if change == .changed { o.set("backup", file.backupPath) }
        return o
    }

    // MARK: enable-control-socket

    func enableControlSocket() throws(HelperFailure) -> JSONObject {
        guard let groupName = options.group else { throw .usage("enable-control-socket needs --group") }
        guard let group = getgrnam(groupName) else { throw .invalid("no group named \(groupName)") }
        let gid = group.pointee.gr_gid
        var dataRoot = stat()
        guard stat(options.torDataRoot, &dataRoot) == 0 else {
            throw .invalid("tor data root \(options.torDataRoot) does not exist: cannot tell which user tor runs as")
        }
        // The socket and cookie always get tor's own group (tor refuses a socket directory of
        // another group), so G must be it: users in G can then use the control socket.
        guard gid == dataRoot.st_gid else {
            let torGroup = getgrgid(dataRoot.st_gid).map { String(cString: $0.pointee.gr_name) } ?? String(dataRoot.st_gid)
            throw .invalid("--group \(groupName): tor runs with group \(torGroup) (the group of \(options.torDataRoot)) and its "
                           + "control socket can only have that group; use --group \(torGroup) and add the user to it")
        }
        let settings = ControlSocketSettings(socketPath: options.controlSocket, cookieFile: options.cookieFile)
        var new = torrc
        let change: TorrcChange
        do { change = try new.enableControlSocket(settings) } catch {
            throw HelperFailure(.conflict, "\(error)")
        }
        let undo = try Directories.prepareControlDir(parentDirectory(of: options.controlSocket),
                                                   torUser: dataRoot.st_uid, torGroup: gid)
        let socket = options.controlSocket
        let cookie = new.cookieAuthFile ?? settings.cookieFile
        // Ready when tor has bound the socket and written the cookie (a moment later).
        let ready = { Self.isSocket(socket) && access(cookie, F_OK) == 0 }
        if change == .changed {
            try transaction.commit(new, undo: undo, waitingFor: "\(socket) and \(cookie)", ready: ready)
        } else if !ready() {
            try tor.reloadNow()
            guard Tor.wait(seconds: options.timeout, { ready() ? true : nil }) != nil else {
                throw HelperFailure(.timeout, "torrc has the control socket but tor did not create \(socket) within \(options.timeout) s")
            }
        }
        var o = JSONObject()
        o.set("action", options.command.rawValue)
        o.set("changed", change == .changed)
        o.set("control_socket", socket)
        o.set("cookie_file", cookie)
        o.set("group", groupName)
        o.set("torrc", file.path)
        if change == .changed { o.set("backup", file.backupPath) }
        return o
    }

    static func isSocket(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & 0o170000 == 0o140000
    }
}
