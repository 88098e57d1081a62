#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// annexd's own tor: a child `tor` with a torrc generated in `<state>/tor`.
///
/// It gets its own DataDirectory, a control socket with cookie auth, and a
/// SOCKS port: 127.0.0.1:9050 when that is free (stock git-annex hard-codes it
/// for tor-annex remotes), else a port tor picks, with a warning. It is started
/// with `__OwningControllerProcess` so it exits with annexd, and the tor
/// manager takes ownership on the control connection.
public struct OwnTor: Sendable {
    /// Where the SOCKS port goes.
    public enum SocksChoice: Sendable, Equatable {
        /// 127.0.0.1:9050 when free, else any free port (with a warning).
        case preferDefault
        /// Exactly this address (`--socks HOST:PORT` given with `--tor own`).
        case fixed(host: String, port: Int)
        /// Any free port (`--socks auto`).
        case any
    }

    public var torBinary: String
    public var directory: String
    public var socks: SocksChoice
    /// A file whose lines are appended to the generated torrc (`--tor-extra-config`).
    public var extraConfigPath: String?
    public var ownerPID: Int32

    public init(torBinary: String = "tor", directory: String, socks: SocksChoice = .preferDefault,
                extraConfigPath: String? = nil, ownerPID: Int32 = getpid()) {
        self.torBinary = torBinary
        self.directory = directory
        self.socks = socks
        self.extraConfigPath = extraConfigPath
        self.ownerPID = ownerPID
    }

    public var dataDirectory: String { directory + "/data" }
    public var torrcPath: String { directory + "/torrc" }
    public var logPath: String { directory + "/tor.log" }
    public var cookiePath: String { dataDirectory + "/control_auth_cookie" }
    /// The control socket, if its path fits in a sockaddr_un; else tor listens
    /// on a loopback ControlPort and writes the port to `controlPortFile`.
    public var controlSocketPath: String? {
        let p = directory + "/control"
        return p.utf8.count <= 100 ? p : nil
    }
    public var controlPortFile: String { directory + "/control-port" }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// What a running instance gives the tor manager.
    public struct Launched: Sendable {
        public let process: BackgroundProcess
        public let control: TorControlEndpoint
        /// Set when 9050 was wanted but taken: the warning to pass on.
        public let socksWarning: String?
    }

    /// The SocksPort line and, when 9050 had to be given up, why.
    func socksLine() -> (line: String, warning: String?) {
        switch socks {
        case .fixed(let host, let port): return ("SocksPort \(host):\(port)", nil)
        case .any: return ("SocksPort 127.0.0.1:auto", nil)
        case .preferDefault:
            if Self.loopbackPortIsFree(9050) { return ("SocksPort 127.0.0.1:9050", nil) }
            return ("SocksPort 127.0.0.1:auto",
                    "127.0.0.1:9050 is in use by another program, so annexd's tor takes another SOCKS port. "
                    + "Stock git-annex always dials 127.0.0.1:9050 for tor-annex remotes: stop the program holding it "
                    + "(often a system tor, which then serves those remotes itself) or use `annexd --tor system`.")
        }
    }

    /// The torrc annexd writes at every start (edits to it are overwritten).
    public func torrc(socksLine: String, extraConfig: String?) -> String {
        var lines = [
            "# Written by annexd at every start of its own tor; edits here are lost.",
            "# Put your own lines in a file and pass it with --tor-extra-config.",
            "DataDirectory \(dataDirectory)",
            "CookieAuthentication 1",
            "CookieAuthFile \(cookiePath)",
            socksLine,
            "Log notice file \(logPath)",
            "__OwningControllerProcess \(ownerPID)",
            "AvoidDiskWrites 1",
        ]
        if let socket = controlSocketPath {
            lines.append("ControlSocket \(socket)")
        } else {
            lines += ["ControlPort 127.0.0.1:auto", "ControlPortWriteToFile \(controlPortFile)"]
        }
        var text = lines.joined(separator: "\n") + "\n"
        if let extraConfig {
            text += "\n# From --tor-extra-config \(extraConfigPath ?? ""):\n" + extraConfig
            if !extraConfig.hasSuffix("\n") { text += "\n" }
        }
        return text
    }

    /// Writes the torrc, starts tor and waits until its control port answers.
    public func launch(timeout: Double = 30) async throws -> Launched {
        try Posix.makeDirectories(directory, mode: 0o700)
        try Posix.makeDirectories(dataDirectory, mode: 0o700)
        chmod(directory, 0o700)
        chmod(dataDirectory, 0o700)
        var extra: String?
        if let extraConfigPath {
            guard let text = try? String(contentsOfFile: extraConfigPath, encoding: .utf8) else {
                throw Failure(description: "cannot read --tor-extra-config \(extraConfigPath): \(String(cString: strerror(errno)))")
            }
            extra = text
        }
        let (socksLine, warning) = socksLine()
        try StateDirectory.writeAtomically(torrcPath, Array(torrc(socksLine: socksLine, extraConfig: extra).utf8), mode: 0o600)
        let defaults = directory + "/torrc-defaults"
        if !Posix.exists(defaults) { try StateDirectory.writeAtomically(defaults, [], mode: 0o600) }
        if let s = controlSocketPath { unlink(s) }
        unlink(controlPortFile)

        let process: BackgroundProcess
        do {
            process = try BackgroundProcess([torBinary, "-f", torrcPath, "--defaults-torrc", defaults], logPath: logPath)
        } catch {
            throw Failure(description: "cannot start \(torBinary): \(error). Install tor (Debian: apt install tor) or pass --tor-binary PATH")
        }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let code = process.exited {
                throw Failure(description: "annexd's tor exited at start (status \(code)): \(lastLogLines())")
            }
            if let endpoint = readyEndpoint() {
                return Launched(process: process, control: endpoint, socksWarning: warning)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        await process.terminate()
        throw Failure(description: "annexd's tor did not open its control port within \(Int(timeout)) s: \(lastLogLines())")
    }

    /// The control endpoint once tor accepts connections on it.
    private func readyEndpoint() -> TorControlEndpoint? {
        if let socket = controlSocketPath {
            guard let fd = try? UnixSocket.connect(socket) else { return nil }
            close(fd)
            return .unix(socket)
        }
        // ControlPortWriteToFile: "PORT=127.0.0.1:NNNN"
        guard let text = try? String(contentsOfFile: controlPortFile, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("PORT=") }),
              let colon = line.lastIndex(of: ":"), let port = Int(line[line.index(after: colon)...]) else { return nil }
        return .tcp(host: "127.0.0.1", port: port)
    }

    /// The end of tor's log, for error messages.
    public func lastLogLines(_ n: Int = 5) -> String {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return "(no log at \(logPath))" }
        let lines = text.split(separator: "\n").suffix(n)
        return lines.isEmpty ? "(empty log at \(logPath))" : lines.joined(separator: " | ") + " (log: \(logPath))"
    }

    /// Whether nothing listens on 127.0.0.1:`port` (a bind succeeds).
    static func loopbackPortIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
