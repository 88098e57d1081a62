import ArgumentParser
import Foundation
import Shared

/// `annex-cli tor …`: the tor annexd uses and the onions it publishes.
struct TorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tor", abstract: "Tor and onion services.",
                                                    subcommands: [Status.self, Enable.self])

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which tor annexd uses, its bootstrap progress, and each repository's onion.")
        @OptionGroup var common: CommonOptions

        func run() throws {
            try common.run {
                let s = try common.client().call(TorStatusMethod.self, RPCNoParams())
                if common.json { return common.printJSON(s.json) }
                print(TorCommand.describe(s))
            }
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set up the system tor as root, through annex-tor-helper (pkexec, else sudo).",
            discussion: """
            With --repo: adds the repository's hidden service to the system torrc in git annex \
            enable-tor's layout, and annexd serves it. Without: gives system tor a control socket \
            for tor's group, so that `annexd --tor system` (and auto) can use it from then on.
            """)
        @OptionGroup var common: CommonOptions
        @Flag(help: "Edit the system tor's torrc (the only kind for now; it asks for an administrator).")
        var system = false
        @Option(help: "A registered repository: add its hidden service (git annex enable-tor's layout).")
        var repo: String?
        @Option(help: "Without --repo: tor's group (default: the group of /var/lib/tor).")
        var group: String?

        func validate() throws {
            guard system else { throw ValidationError("say --system: annexd edits the system torrc only when asked to") }
            if repo != nil && group != nil { throw ValidationError("--group goes with the control socket, not with --repo") }
        }

        func run() throws {
            try common.run {
                let path = try repo.map { try RepoOption.resolve($0) }
                let r = try common.client().call(TorEnableSystem.self, .init(repo: path, group: group))
                if common.json { return common.printJSON(r.json) }
                print(r.message)
            }
        }
    }

    static func describe(_ s: TorStatus) -> String {
        var lines = [
            "tor:        \(s.using) (--tor \(s.mode))",
            "control:    \(s.control ?? "-")",
            "socks:      \(s.socks ?? "-")",
            "bootstrap:  \(s.bootstrapProgress)% \(s.bootstrapSummary)",
        ]
        if let w = s.warning { lines.append("warning:    \(w)") }
        if let e = s.error { lines.append("error:      \(e)") }
        if s.onions.isEmpty {
            lines.append("onions:     none")
        } else {
            lines.append("onions:")
            for o in s.onions {
                lines.append("  \(o.state.padding(toLength: 9, withPad: " ", startingAt: 0)) \(o.onion):\(o.port)  \(o.repo)"
                             + (o.error.map { "  (\($0))" } ?? ""))
            }
        }
        return lines.joined(separator: "\n")
    }
}
