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

    /// Why the helper did not do its job.
    public enum Failure: ServiceError {
        case missing
        case needsRoot(command: String)
        case cannotRun(program: String, why: String)
        /// It ran but did not answer JSON (authentication refused, crashed).
        case failed(command: String, status: Int32, stderr: String)
        /// It answered `{"ok": false, …}`: it refused or rolled back.
        case refused(message: String, reason: String, answer: JSONValue)

        public var kind: FailureKind {
            switch self {
            case .missing, .cannotRun, .refused: .unavailable
            case .needsRoot, .failed: .permissionDenied
            }
        }
        public var reason: String {
            switch self {
            case .missing: "helper_missing"
            case .needsRoot: "needs_root"
            case .cannotRun, .failed: "helper_failed"
            case .refused(_, let reason, _): reason
            }
        }
        public var details: JSONObject {
            if case .refused(_, _, let answer) = self { return ["helper": answer] }
            return [:]
        }
        public var description: String {
            switch self {
            case .missing: "annex-tor-helper is not installed: run `sudo make install-tor-helper` in annexd's source tree"
            case .needsRoot(let command):
                "editing the system torrc needs root, and neither pkexec nor sudo is installed: run as root `\(command)`"
            case .cannotRun(let program, let why): "cannot run \(program): \(why)"
            case .failed(let command, let status, let stderr):
                "\(command) failed (status \(status))\(stderr.isEmpty ? "" : ": " + stderr). "
                    + "If authentication was refused or unavailable, run that command as root yourself"
            case .refused(let message, _, _): "annex-tor-helper: \(message) (nothing was changed)"
            }
        }
    }

    func resolvedHelper() throws(Failure) -> String {
        if let helperPath { return helperPath }
        guard let found = Self.candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw .missing
        }
        return found
    }

    /// The argv that runs the helper as root.
    func elevated(_ helper: String, _ args: [String]) throws(Failure) -> [String] {
        let full = [helper] + args + extraArguments
        if geteuid() == 0 { return full }
        for dir in ["/usr/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: dir + "/pkexec") {
            return [dir + "/pkexec"] + full
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/sudo") { return ["/usr/bin/sudo", "-n"] + full }
        throw .needsRoot(command: full.joined(separator: " "))
    }

    /// Runs the helper (blocking: call it off the event loop) and returns its JSON result.
    public func run(_ args: [String]) throws(Failure) -> Outcome {
        let helper = try resolvedHelper()
        let argv = try elevated(helper, args)
        let result: Command.Output
        do { result = try Command.run(argv) } catch {
            throw .cannotRun(program: argv[0], why: "\(error)")
        }
        guard let json = try? JSONValue(parsing: Array(result.stdout.utf8)), case .object = json else {
            let why = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw .failed(command: argv.joined(separator: " "), status: result.status, stderr: why)
        }
        if json["ok"]?.boolValue != true {
            throw .refused(message: json["error"]?.stringValue ?? "failed", reason: json["reason"]?.stringValue ?? "helper_failed", answer: json)
        }
        return Outcome(json: json, command: argv)
    }
}
