import Testing
@testable import AnnexdKit

@Suite struct ReadyHintTests {
    @Test func noRepositoryGivesTheNextCommandsTheSocketAndTheLogs() throws {
        let text = try #require(ReadyHint.text(repositories: 0, socket: "/run/user/1000/annexd/rpc.sock",
                                               cliSocket: "/run/user/1000/annexd/rpc.sock", logs: .terminal))
        #expect(text == """
            annexd is ready, with no repository yet. Next:
              annex-cli repo add PATH        serve a git-annex repository (git annex init done)
              annex-cli invite --repo PATH   an address for the other side's `git annex p2p --link`
              annex-cli pair --repo PATH     pair with another annexd or `git annex p2p --pair`
            Socket: /run/user/1000/annexd/rpc.sock    Logs: this terminal (stderr)

            """)
    }

    @Test func aSocketAnnexCLIWouldNotFindIsSpelledOut() throws {
        let text = try #require(ReadyHint.text(repositories: 0, socket: "/tmp/x/rpc.sock", cliSocket: "/run/user/0/annexd/rpc.sock",
                                               logs: .journal))
        #expect(text.contains("Logs: the journal (journalctl --user -u annexd)"))
        #expect(text.hasSuffix("annex-cli looks for /run/user/0/annexd/rpc.sock: give it --socket /tmp/x/rpc.sock (or set ANNEXD_SOCKET)\n"))
    }

    @Test func withRepositoriesItStaysQuiet() {
        #expect(ReadyHint.text(repositories: 1, socket: "/s", cliSocket: "/s", logs: .terminal) == nil)
    }

    @Test func logsGoToTheJournalWhenSystemdGaveAStream() {
        #expect(ReadyHint.LogDestination.current(["JOURNAL_STREAM": "8:12345"]) == .journal)
        #expect(ReadyHint.LogDestination.current([:]) == .terminal)
        #expect(ReadyHint.LogDestination.current(["JOURNAL_STREAM": ""]) == .terminal)
    }

    @Test func annexCLISocketRules() {
        #expect(ReadyHint.cliSocket(["ANNEXD_SOCKET": "/a/s"]) == "/a/s")
        #expect(ReadyHint.cliSocket(["ANNEXD_SOCKET": ""]) == Daemon.Config.defaultSocketPath())
    }
}
