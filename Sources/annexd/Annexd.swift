import AnnexdKit
import ArgumentParser
import Foundation
import Shared

@main
struct Annexd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "annexd",
        abstract: "Serve git-annex repositories to each other over Tor onion services.",
        subcommands: [Serve.self, P2PStdio.self, GitConnect.self, OpenRPC.self],
        defaultSubcommand: Serve.self)
}

/// Stands in for `git-annex-shell p2pstdio`: one already authenticated P2P session on stdin/stdout.
struct P2PStdio: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p2p-stdio",
        abstract: "Serve one git-annex P2P session on standard input and output.",
        discussion: """
        Like `git-annex-shell p2pstdio`: authentication already happened on another
        layer (ssh), so the session starts with AUTH-SUCCESS. Set
        GIT_ANNEX_SHELL_READONLY to refuse changes, as git-annex-shell does.
        """)

    @Argument(help: "The git-annex repository to serve.")
    var repo: String

    @Option(help: "UUID of the client repository, as git-annex-shell takes it.")
    var clientUUID: String?

    @Flag(help: "Refuse PUT, REMOVE and git-receive-pack.")
    var readOnly = false

    func run() throws {
        Posix.ignoreSIGPIPE()
        let annex: AnnexRepo
        do {
            annex = try AnnexRepo(path: repo)
        } catch {
            FileHandle.standardError.write(Data("annexd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let store = ObjectStore(repo: annex)
        defer { store.log.close() }
        let conn = FDConnection(readFD: 0, writeFD: 1)
        if let tracePath = ProcessInfo.processInfo.environment["ANNEXD_TRACE"] {
            let trace = FileHandle(forWritingAtPath: tracePath) ?? {
                _ = FileManager.default.createFile(atPath: tracePath, contents: nil)
                return FileHandle(forWritingAtPath: tracePath)!
            }()
            trace.seekToEndOfFile()
            conn.trace = { dir, line in trace.write(Data("\(dir) \(line)\n".utf8)) }
        }
        let readOnly = self.readOnly || ProcessInfo.processInfo.environment["GIT_ANNEX_SHELL_READONLY"] != nil
        let session = P2PServerSession(
            connection: conn, store: store,
            config: .init(serverUUID: annex.uuid, readOnly: readOnly, preauthenticated: true),
            clientUUID: clientUUID,
            report: { FileHandle.standardError.write(Data("annexd: \($0)\n".utf8)) })
        do {
            try session.run()
        } catch {
            FileHandle.standardError.write(Data("annexd: p2p-stdio: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
