#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import ClientKit
import Shared

@main
struct AnnexCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "annex-cli",
        abstract: "Drive annexd: repositories, peers, transfers, events.",
        subcommands: [Status.self, RepoCommand.self, RemoteCommand.self, Invite.self, Pair.self, PeerCommand.self,
                      Get.self, Copy.self, Drop.self, Sync.self, Transfers.self, TransferAction<TransferCancel>.self,
                      TransferAction<TransferPause>.self, TransferAction<TransferResume>.self, TransferAction<TransferRetry>.self,
                      Events.self, TorCommand.self, DaemonCommand.self])
}

/// Options every command takes.
struct CommonOptions: ParsableArguments {
    @Option(help: "annexd's RPC socket (default: $ANNEXD_SOCKET, else $XDG_RUNTIME_DIR/annexd/rpc.sock).")
    var socket: String?

    @Flag(help: "Print JSON (stable field names) instead of text.")
    var json = false

    var socketPath: String { RPCClient.socketPath(explicit: socket) }

    func client() throws -> RPCClient { try RPCClient(path: socketPath) }

    /// Runs `body`, turning failures into one clear line (or a JSON error object) and exit status 1.
    func run(_ body: () throws -> Void) throws {
        do { try body() } catch let e as RPCClient.Failure {
            if json {
                let err: JSONValue
                if case .rpc(let r) = e { err = r.json } else {
                    err = .object(["code": -1, "message": .string(e.description),
                                   "data": .object(["reason": .string(Self.reason(e))])])
                }
                print(JSONValue.object(["error": err]).serialized())
            } else {
                FileHandle.standardError.write(Data("annex-cli: \(e.description)\n".utf8))
            }
            throw ExitCode(1)
        }
    }

    static func reason(_ e: RPCClient.Failure) -> String {
        switch e {
        case .notRunning: return "daemon_not_running"
        case .io: return "io_error"
        case .rpc(let r): return r.reason ?? "error"
        }
    }

    func printJSON(_ value: JSONValue) { print(value.serialized()) }
}

/// `--repo PATH`, defaulting to the repository around the current directory.
struct RepoOption: ParsableArguments {
    @Option(help: "The repository (default: the one around the current directory).")
    var repo: String?

    func resolved() throws -> String { try Self.resolve(repo) }

    static func resolve(_ repo: String?) throws -> String {
        if let repo { return absolute(repo) }
        let cwd = FileManager.default.currentDirectoryPath
        for args in [["rev-parse", "--show-toplevel"], ["rev-parse", "--absolute-git-dir"]] {
            if let out = runGit(args, cwd: cwd) { return out }
        }
        throw ValidationError("not inside a git repository; use --repo PATH")
    }

    private static func absolute(_ p: String) -> String {
        p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
    }

    private static func runGit(_ args: [String], cwd: String) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git"] + args
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let s = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return p.terminationStatus == 0 && !s.isEmpty ? s : nil
    }
}

func table(_ header: [String], _ rows: [[String]]) -> String {
    let widths = header.indices.map { i in max(header[i].count, rows.map { $0[i].count }.max() ?? 0) }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show what annexd is doing.")
    @OptionGroup var common: CommonOptions

    func run() throws {
        try common.run {
            let s = try common.client().call(DaemonStatusMethod.self, RPCNoParams())
            if common.json { return common.printJSON(s.json) }
            print("""
                annexd \(s.version), pid \(s.pid), up \(Int(s.uptime)) s
                state:       \(s.stateDir)
                socket:      \(s.socket)
                tor:         \(s.tor)
                repos:       \(s.repos)
                connections: \(s.connections)
                """)
        }
    }
}

struct DaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "daemon", abstract: "Control the daemon.",
                                                    subcommands: [Stop.self])
    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop annexd gracefully.")
        @OptionGroup var common: CommonOptions
        func run() throws {
            try common.run {
                _ = try common.client().call(DaemonShutdown.self, RPCNoParams())
                if common.json { common.printJSON(.object(["stopping": true])) } else { print("annexd is stopping") }
            }
        }
    }
}

struct RepoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "repo", abstract: "Repositories annexd serves.",
                                                    subcommands: [Add.self, List.self, Info.self, Remove.self, Set.self])

    static func show(_ r: RepoInfo) -> String {
        var text = """
        \(r.path)
          uuid:    \(r.uuid)
          address: \(r.address)
          socket:  \(r.socket)
          peers:   \(r.peers)
        """
        if let s = r.settings { text += "\n" + show(s) }
        return text
    }

    /// The settings as `repo info` and `repo set` print them.
    static func show(_ s: RepoSettings) -> String {
        func value(_ on: Bool, _ name: String) -> String {
            (on ? "on" : "off") + (s.set.contains(name) ? " (set)" : " (default: git config or annexd's)")
        }
        var lines = ["  watch:        \(value(s.watch, "watch"))", "  sync content: \(value(s.syncContent, "sync_content"))"]
        for r in s.remotes {
            let state = r.connected.map { $0 ? ", connected" : ", not connected" } ?? ""
            lines.append("  remote \(r.name): " + (r.watched ? "watched" + state : "not watched (\(r.skipped ?? "?"))"))
        }
        return lines.joined(separator: "\n")
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a git-annex repository and serve it.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The repository (default: the one around the current directory).") var path: String?
        func run() throws {
            try common.run {
                let p = try RepoOption.resolve(path)
                let r = try common.client().call(RepoAdd.self, .init(path: p))
                common.json ? common.printJSON(r.json) : print(RepoCommand.show(r))
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered repositories.")
        @OptionGroup var common: CommonOptions
        func run() throws {
            try common.run {
                let r = try common.client().call(RepoList.self, RPCNoParams())
                if common.json { return common.printJSON(r.json) }
                if r.repos.isEmpty { return print("no repositories; add one with `annex-cli repo add PATH`") }
                print(table(["PATH", "UUID", "PEERS", "ADDRESS"], r.repos.map { [$0.path, $0.uuid, "\($0.peers)", $0.address] }))
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one registered repository.")
        @OptionGroup var common: CommonOptions
        @OptionGroup var repo: RepoOption
        func run() throws {
            try common.run {
                let r = try common.client().call(RepoInfoMethod.self, .init(repo: try repo.resolved()))
                common.json ? common.printJSON(r.json) : print(RepoCommand.show(r))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop serving a repository and forget it.")
        @OptionGroup var common: CommonOptions
        @OptionGroup var repo: RepoOption
        func run() throws {
            try common.run {
                let r = try common.client().call(RepoRemove.self, .init(repo: try repo.resolved()))
                common.json ? common.printJSON(r.json) : print("no longer serving \(r.path)")
            }
        }
    }
}

/// `on`, `off`, or `default` (back to git config's value or annexd's).
enum SettingSwitch: String, ExpressibleByArgument, CaseIterable {
    case on, off, `default`
    var change: RepoSettingChange {
        switch self {
        case .on: .set(true)
        case .off: .set(false)
        case .default: .reset
        }
    }
}

extension RepoCommand {
    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a repository's settings.",
            discussion: "--watch on keeps a connection to each tor-annex remote and syncs when one changes; --sync-content on makes a sync move wanted content too. `default` goes back to git-annex's annex.autosync / annex.synccontent in the repository's git config (else off). Remotes with remote.<name>.annex-sync=false or annex-ignore=true are not watched.")
        @OptionGroup var common: CommonOptions
        @OptionGroup var repo: RepoOption
        @Option(help: "Watch the repository's remotes: on, off or default.") var watch: SettingSwitch?
        @Option(help: "Sync content too: on, off or default.") var syncContent: SettingSwitch?

        func validate() throws {
            if watch == nil && syncContent == nil {
                throw ValidationError("nothing to change: give --watch on|off|default and/or --sync-content on|off|default")
            }
        }

        func run() throws {
            try common.run {
                let params = RepoSet.Params(repo: try repo.resolved(), watch: watch?.change ?? .unchanged,
                                            syncContent: syncContent?.change ?? .unchanged)
                let s = try common.client().call(RepoSet.self, params)
                common.json ? common.printJSON(s.json) : print(RepoCommand.show(s))
            }
        }
    }
}

struct Invite: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make an address with a fresh token for a new peer.",
        discussion: "Prints tor-annex::ONION:PORT:TOKEN, for `git annex p2p --link` (or `annex-cli remote add`) on the peer's side. Keep it secret.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var repo: RepoOption
    @Option(help: "A name for the peer (default: peer-N).") var name: String?
    @Flag(help: "The peer may get content but not store or remove it.") var readOnly = false

    func run() throws {
        try common.run {
            let r = try common.client().call(PeerInvite.self, .init(repo: try repo.resolved(), name: name,
                                                                    access: readOnly ? "read-only" : "read-write"))
            common.json ? common.printJSON(r.json) : print(r.address)
        }
    }
}

struct PeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "peer", abstract: "Peers of a repository.",
                                                    subcommands: [List.self, Revoke.self, Access.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a repository's peers.")
        @OptionGroup var common: CommonOptions
        @OptionGroup var repo: RepoOption
        func run() throws {
            try common.run {
                let r = try common.client().call(PeerList.self, .init(repo: try repo.resolved()))
                if common.json { return common.printJSON(r.json) }
                if r.peers.isEmpty { return print("no peers; invite one with `annex-cli invite`") }
                print(table(["NAME", "ACCESS"], r.peers.map { [$0.name, $0.access] }))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse a peer from now on.")
        @OptionGroup var common: CommonOptions
        @OptionGroup var repo: RepoOption
        @Argument(help: "Peer name.") var name: String
        func run() throws {
            try common.run {
                let r = try common.client().call(PeerRevoke.self, .init(repo: try repo.resolved(), name: name))
                common.json ? common.printJSON(r.json) : print("revoked \(r.name)")
            }
        }
    }

    struct Access: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a peer's access: read-only or read-write.")
        @OptionGroup var common: CommonOptions
        @OptionGroup var repo: RepoOption
        @Argument(help: "Peer name.") var name: String
        @Argument(help: "read-only or read-write.") var access: String
        func validate() throws {
            guard access == "read-only" || access == "read-write" else { throw ValidationError("access must be read-only or read-write") }
        }
        func run() throws {
            try common.run {
                let r = try common.client().call(PeerSetAccess.self, .init(repo: try repo.resolved(), name: name, access: access))
                common.json ? common.printJSON(r.json) : print("\(r.name) is now \(r.access)")
            }
        }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show annexd's events.",
        discussion: "Without --follow: a snapshot of the daemon (or, with --since, the events still kept after that id), then stop.")
    @OptionGroup var common: CommonOptions
    @Flag(help: "Keep following new events.") var follow = false
    @Option(help: "Replay events after this id first.") var since: Int?
    @Option(parsing: .upToNextOption, help: "Only these event types.") var type: [String] = []

    func run() throws {
        try common.run {
            let client = try common.client()
            var got: [RPCNotification] = []
            let r = try client.call(EventsSubscribe.self, .init(since: since, types: type.isEmpty ? nil : type)) { got.append($0) }
            func show(_ n: RPCNotification) {
                if common.json { print(n.params?.serialized() ?? "{}") } else if let p = n.params {
                    let id = p["id"]?.intValue.map(String.init) ?? "-"
                    let type = p["type"]?.stringValue ?? n.method
                    var rest = p.objectValue ?? [:]
                    for k in ["id", "boot", "type", "time"] { rest[k] = nil }
                    print("\(id)\t\(type)\t\(JSONValue.object(rest).serialized())")
                }
                fflush(nil)
            }
            for n in got { show(n) }
            // Without --follow: what is already there (the snapshot, or the replay after --since), then stop.
            if !follow && r.replayThrough == nil { return }
            try client.follow { n in
                show(n)
                if follow { return true }
                if n.method == "event.overflow" { return false }
                return (n.params?["id"]?.intValue).map { $0 < Int64(r.replayThrough!) } ?? true
            }
        }
    }
}

struct RemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remote", abstract: "Remotes that reach peers over tor.",
                                                    subcommands: [Add.self, List.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Link to a peer from its address, as `git annex p2p --link` does.",
            discussion: "ADDRESS is tor-annex::ONION:PORT:TOKEN from the peer (`annex-cli invite` or `git annex p2p --gen-addresses`); \"-\" reads it from standard input, which keeps the token out of your shell history.")
        @OptionGroup var common: CommonOptions
        @OptionGroup var repo: RepoOption
        @Argument(help: "Name of the new git remote.") var name: String
        @Argument(help: "The peer's address with its token, or - to read it from standard input.") var address: String

        func run() throws {
            try common.run {
                var addr = address
                if addr == "-" { addr = readLine(strippingNewline: true) ?? "" }
                let r = try common.client().call(PeerLink.self, .init(repo: try repo.resolved(), name: name, address: addr))
                common.json ? common.printJSON(r.json) : print("linked \(r.name) -> \(r.address) (\(r.uuid ?? "?"))")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a repository's tor-annex remotes.")
        @OptionGroup var common: CommonOptions
        @OptionGroup var repo: RepoOption
        func run() throws {
            try common.run {
                let r = try common.client().call(RemoteListMethod.self, .init(repo: try repo.resolved()))
                if common.json { return common.printJSON(r.json) }
                if r.remotes.isEmpty { return print("no tor-annex remotes; add one with `annex-cli remote add NAME ADDRESS`") }
                print(table(["NAME", "UUID", "ADDRESS"], r.remotes.map { [$0.name, $0.uuid ?? "-", $0.address] }))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a tor-annex remote and its token.")
        @OptionGroup var common: CommonOptions
        @OptionGroup var repo: RepoOption
        @Argument(help: "Remote name.") var name: String
        func run() throws {
            try common.run {
                let r = try common.client().call(RemoteRemove.self, .init(repo: try repo.resolved(), name: name))
                common.json ? common.printJSON(r.json) : print("removed \(r.name)")
            }
        }
    }
}
