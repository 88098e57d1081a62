import ArgumentParser
import Foundation
import Shared

/// `annex-cli tor …`: the tor annexd uses and the onions it publishes.
struct TorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tor", abstract: "Tor and onion services.",
                                                    subcommands: [Status.self])

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
