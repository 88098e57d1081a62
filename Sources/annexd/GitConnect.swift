import AnnexdKit
import ArgumentParser
import Foundation
import Shared

/// What git's `ext::` transport runs to reach a tor-annex remote through annexd's tor
/// (see GitOverTor: annexd's sync sets it up; by hand, as the discussion says).
struct GitConnect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "git-connect",
        abstract: "Connect git to a tor-annex remote's git service over the P2P protocol.",
        discussion: """
        Run by git, not by people: git's ext:: transport starts it with the service
        (git-upload-pack or git-receive-pack) and the remote's ONION:PORT, and talks git's
        protocol on its standard input and output. It dials through the SOCKS port in
        ANNEXD_SOCKS (HOST:PORT) with the token git-annex stored for that onion in the
        repository (ANNEXD_GIT_REPO, else the current directory), as git-remote-tor-annex
        does, but without its fixed 127.0.0.1:9050. By hand:
          ANNEXD_SOCKS=127.0.0.1:9050 git -c protocol.ext.allow=always \\
            -c url."ext::annexd git-connect %S ".insteadOf=tor-annex:: fetch REMOTE
        """)

    @Argument(help: "git-upload-pack or git-receive-pack.")
    var service: String

    @Argument(help: "The remote's ONION:PORT (its tor-annex:: URL without the scheme).")
    var address: String

    func run() throws {
        Posix.ignoreSIGPIPE()
        do {
            let code = try GitConnectBridge.run(service: service, address: address)
            throw ExitCode(Int32(truncatingIfNeeded: code))
        } catch let failure as GitConnectBridge.Failure {
            FileHandle.standardError.write(Data("\(failure)\n".utf8))
            throw ExitCode(128)
        }
    }
}
