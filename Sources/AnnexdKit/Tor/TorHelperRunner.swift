#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared

/// Runs annex-tor-helper as root: directly when annexd is root, else through
/// pkexec (polkit asks an administrator, contrib/polkit), else `sudo -n`. The
/// helper does the one privileged step (a torrc edit) and answers one JSON object.
public struct TorHelperRunner: Sendable {
    /// The helper binary; nil: the first of `candidates` that exists.
    public var helperPath: String?
    /// Appended to every invocation (test overrides such as `--torrc PATH`).
    public var extraArguments: [String] = []

    public init(helperPath: String? = nil, extraArguments: [String] = []) {
        self.helperPath = helperPath
        self.extraArguments = extraArguments
    }

    /// Where `make install-tor-helper` puts it, then beside annexd (a development build).
    static var candidates: [String] {
        let exe = Posix.realpath("/proc/self/exe") ?? ""
        let bin = Posix.dirname(exe)
        return [Posix.dirname(bin) + "/libexec/annex-tor-helper", "/usr/local/libexec/annex-tor-helper",
                "/usr/libexec/annex-tor-helper", bin + "/annex-tor-helper"]
    }

    public struct Outcome: Sendable {
        public let json: JSONValue
        public let command: [String]
    }

    func resolvedHelper() throws(RPCError) -> String {
        if let helperPath { return helperPath }
        guard let found = Self.candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw RPCError(.unavailable, message: "annex-tor-helper is not installed: run `sudo make install-tor-helper` in annexd's source tree",
                           reason: "helper_missing")
        }
        return found
    }

    /// The argv that runs the helper as root.
    func elevated(_ helper: String, _ args: [String]) throws(RPCError) -> [String] {
        let full = [helper] + args + extraArguments
        if geteuid() == 0 { return full }
        for dir in ["/usr/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: dir + "/pkexec") {
            return [dir + "/pkexec"] + full
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/sudo") { return ["/usr/bin/sudo", "-n"] + full }
        throw RPCError(.permissionDenied,
                       message: "editing the system torrc needs root, and neither pkexec nor sudo is installed: run as root `\(full.joined(separator: " "))`",
                       reason: "needs_root")
    }

    /// Runs the helper (blocking: call it off the event loop) and returns its JSON result.
    public func run(_ args: [String]) throws(RPCError) -> Outcome {
        let helper = try resolvedHelper()
        let argv = try elevated(helper, args)
        let result: Command.Output
        do { result = try Command.run(argv) } catch {
            throw RPCError(.unavailable, message: "cannot run \(argv[0]): \(error)", reason: "helper_failed")
        }
        guard let json = try? JSONValue(parsing: Array(result.stdout.utf8)), case .object = json else {
            let why = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw RPCError(.permissionDenied,
                           message: "\(argv.joined(separator: " ")) failed (status \(result.status))\(why.isEmpty ? "" : ": " + why). "
                               + "If authentication was refused or unavailable, run that command as root yourself",
                           reason: "helper_failed")
        }
        if json["ok"]?.boolValue != true {
            throw RPCError(.unavailable, message: "annex-tor-helper: \(json["error"]?.stringValue ?? "failed") (nothing was changed)",
                           reason: json["reason"]?.stringValue ?? "helper_failed", details: ["helper": json])
        }
        return Outcome(json: json, command: argv)
    }
}
