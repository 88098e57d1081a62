#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOPosix
import Shared

/// How git reaches tor-annex remotes through annexd instead of git-remote-tor-annex (which
/// hard-codes tor at 127.0.0.1:9050): git's own `ext::` transport runs
/// `annexd git-connect SERVICE ONION:PORT`, chosen by a `url.<ext::…>.insteadOf=tor-annex::`
/// rewrite. Both settings travel in git's GIT_CONFIG_COUNT environment, so they reach every
/// git command run with it (and none other), and nothing is written to any git config.
public struct GitOverTor: Sendable {
    /// The annexd executable git runs for the connection.
    public let annexd: String
    /// tor's SOCKS port (or --socks), passed on in ANNEXD_SOCKS.
    public let socks: (host: String, port: Int)
    /// The environment git commands start from (nil: this process's).
    public var baseEnvironment: [String: String]?

    public static let socksVariable = "ANNEXD_SOCKS"
    public static let repoVariable = "ANNEXD_GIT_REPO"

    public init(annexd: String, socks: (host: String, port: Int)) {
        self.annexd = annexd
        self.socks = socks
    }

    /// `ext::` command text: a space separates arguments, so spaces and `%` in the path are escaped.
    var extURL: String {
        let path = annexd.replacingOccurrences(of: "%", with: "%%").replacingOccurrences(of: " ", with: "% ")
        return "ext::\(path) git-connect %S "
    }

    /// The environment of a git command in `repo` whose tor-annex remotes go through annexd.
    public func environment(repo: String) -> [String: String] {
        var env = baseEnvironment ?? ProcessInfo.processInfo.environment
        // Any GIT_CONFIG_KEY_n the daemon inherited is replaced, not extended.
        for key in env.keys where key.hasPrefix("GIT_CONFIG_KEY_") || key.hasPrefix("GIT_CONFIG_VALUE_") { env[key] = nil }
        env["GIT_CONFIG_COUNT"] = "2"
        env["GIT_CONFIG_KEY_0"] = "protocol.ext.allow"
        env["GIT_CONFIG_VALUE_0"] = "always"
        env["GIT_CONFIG_KEY_1"] = "url.\(extURL).insteadOf"
        env["GIT_CONFIG_VALUE_1"] = TorAnnexAddress.scheme
        env["GIT_TERMINAL_PROMPT"] = "0"
        env[Self.socksVariable] = "\(socks.host):\(socks.port)"
        env[Self.repoVariable] = repo
        return env
    }
}

/// `annexd git-connect SERVICE ONION:PORT`: the process git's `ext::` transport runs. It
/// dials the onion through ANNEXD_SOCKS as PeerDialer does (the token git-annex keeps in the
/// repository's creds/, AUTH as its UUID), sends CONNECT SERVICE, and relays git's protocol on
/// stdin/stdout until CONNECTDONE, whose code it exits with. Errors go to stderr, which git
/// shows, ending in `[code]` (peer_unreachable, auth_failed, …).
public enum GitConnectBridge {
    public struct Failure: Error, CustomStringConvertible {
        public let code: String
        public let message: String
        public var description: String { "annexd git-connect: \(message) [\(code)]" }
    }

    public static let services: Set<String> = ["git-upload-pack", "git-receive-pack"]

    /// Connects and relays; the service's exit code.
    public static func run(service: String, address text: String,
                           environment env: [String: String] = ProcessInfo.processInfo.environment,
                           cwd: String = FileManager.default.currentDirectoryPath) throws(Failure) -> Int {
        guard services.contains(service) else {
            throw Failure(code: "invalid_service", message: "\(service) is not a git service annexd relays (git-upload-pack or git-receive-pack)")
        }
        let address: TorAnnexAddress
        do { address = try TorAnnexAddress(parsing: TorAnnexAddress.scheme + text, token: .forbidden) } catch {
            throw Failure(code: "invalid_address", message: "\(text) is not ONION:PORT of a tor-annex remote: \(error)")
        }
        guard let socksText = env[GitOverTor.socksVariable], let socks = parseHostPort(socksText) else {
            throw Failure(code: "no_socks", message: "\(GitOverTor.socksVariable) is not set to HOST:PORT of tor's SOCKS port (annexd sets it when it runs git; by hand: \(GitOverTor.socksVariable)=127.0.0.1:9050)")
        }
        let annex: AnnexRepo
        do { annex = try AnnexRepo(path: env[GitOverTor.repoVariable] ?? cwd) } catch {
            throw Failure(code: "no_repository", message: "\(error)")
        }
        guard let token = PeerDialer.token(annex, onion: address.onion) else {
            throw Failure(code: "auth_failed", message: "no token is stored for \(address.address) in \(annex.path)/.git/annex/creds: link it again (annex-cli remote add, or git annex p2p --link)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let dialer = PeerDialer(group: group) { socks }
        let client: P2PClient
        do { client = try dialer.connect(address, token: token, as: annex.uuid, store: nil, socksAddress: socks) } catch {
            throw Failure(code: error.code, message: error.description)
        }
        defer { client.close() }
        do { return try client.connectService(service, input: 0, output: 1) } catch let stall as P2PClient.RelayStalled {
            throw Failure(code: "stalled", message: "relaying \(service) with \(address.address): \(stall)")
        } catch {
            throw Failure(code: "protocol_error", message: "relaying \(service) with \(address.address) failed: \(error)")
        }
    }

    static func parseHostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port), colon > text.startIndex else { return nil }
        return (String(text[..<colon]), port)
    }

    /// The `[code]` a git-connect error line on git's stderr ends in, and its message.
    public static func failure(inStderr text: String) -> Failure? {
        for line in text.split(separator: "\n").reversed() {
            guard let start = line.range(of: "annexd git-connect: "), line.hasSuffix("]"),
                  let open = line.lastIndex(of: "[") else { continue }
            let code = String(line[line.index(after: open)..<line.index(before: line.endIndex)])
            let message = String(line[start.upperBound..<open]).trimmingCharacters(in: .whitespaces)
            return Failure(code: code, message: message)
        }
        return nil
    }
}
