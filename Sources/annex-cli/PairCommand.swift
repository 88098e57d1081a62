#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Synchronization
import ClientKit
import Shared

/// `annex-cli pair`: like `git annex p2p --pair`, it shows this repository's code, reads the
/// other repository's code (standard input, a terminal or not; or `--code`), and waits until
/// both sides exchanged their pairing data and linked to each other.
struct Pair: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pair with another repository (annexd or `git annex p2p --pair`) through Magic Wormhole.",
        discussion: "Prints this repository's pairing code, then reads the other repository's code from "
            + "standard input (or takes it from --code). Both sides then exchange their addresses and "
            + "half tokens, store the joined token and add a git remote for the other side, exactly as "
            + "git-annex does, so either side can get and copy content right after.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var repo: RepoOption
    @Option(help: "Name of the remote (and peer) for the other side (default: peerN, as git-annex).") var name: String?
    @Option(help: "The other repository's pairing code (default: read it from standard input).") var code: String?
    @Option(help: "Give up after this many seconds (default 600).") var timeout: Int?

    func run() throws {
        try common.run {
            let client = try common.client()
            let started = try client.call(PairStart.self, .init(repo: try repo.resolved(), name: name, timeout: timeout))
            let interrupt = CancelOnInterrupt(pairing: started.id, socket: common.socketPath, json: common.json)
            defer { withExtendedLifetime(interrupt) {} }
            if common.json {
                common.printJSON(started.json)
            } else {
                print("\nThis repository's pairing code is: \(started.code)\n")
            }
            fflush(nil)
            guard let theirs = try code ?? Self.readCode(ours: started.code, prompt: !common.json) else {
                _ = try? client.call(PairCancel.self, .init(id: started.id))
                throw RPCClient.Failure.rpc(RPCError(.invalidState, message: "no pairing code was entered; pairing cancelled", reason: "cancelled"))
            }
            if !common.json { print("Exchanging pairing data...") }
            _ = try client.call(EventsSubscribe.self, .init(types: ["pair.progress"])) { _ in }
            let result: PairSubmit.Result
            do {
                result = try client.call(PairSubmit.self, .init(id: started.id, code: theirs)) { n in
                    guard !common.json, let p = n.params, p["pairing"]?.stringValue == started.id,
                          let message = p["message"]?.stringValue, p["stage"]?.stringValue != "exchanging" else { return }
                    print(message.prefix(1).uppercased() + message.dropFirst())
                    fflush(nil)
                }
            } catch {
                try interrupt.rethrow(error)
            }
            if common.json { return common.printJSON(result.json) }
            print("Paired: remote \(result.remote.name) -> \(result.remote.address) (\(result.remote.uuid ?? "?"))")
        }
    }

    /// Reads lines until one is a pairing code other than ours (as git-annex asks again);
    /// nil at the end of input.
    static func readCode(ours: String, prompt: Bool) throws -> String? {
        while true {
            if prompt {
                print("Enter the other repository's pairing code: ", terminator: "")
                fflush(nil)
            }
            guard let line = readLine(strippingNewline: true) else { return nil }
            if line.allSatisfy(\.isWhitespace) { continue }
            guard let code = try? WormholeCode(userInput: line) else {
                FileHandle.standardError.write(Data("That does not look like a valid pairing code (like 7-guitarist-revenge). Try again...\n".utf8))
                continue
            }
            guard code.text != ours else {
                FileHandle.standardError.write(Data("Oops -- you entered this repository's pairing code. Enter the pairing code of the *other* repository.\n".utf8))
                continue
            }
            return code.text
        }
    }
}

/// Set once Ctrl-C was pressed during a pairing.
private let interruptedByUser = Atomic<Bool>(false)
/// Set once the pairing's command is over (a later Ctrl-C just ends annex-cli).
private let pairingOver = Atomic<Bool>(false)

/// While alive, Ctrl-C (SIGINT) cancels the pairing in annexd (pair.cancel, on a connection of
/// its own: the main thread is blocked reading the code or waiting for pair.submit), says so,
/// and exits with status 130, so the daemon keeps nothing of an abandoned pairing.
/// SIGINT is blocked before init returns (threads started later inherit that) and a thread of
/// its own takes it with sigwait(3): no handler, so nothing is lost in between and nothing runs
/// in signal context. (A dispatch signal source, registered later on libdispatch's own thread,
/// lost a Ctrl-C pressed right after the code showed.)
final class CancelOnInterrupt {
    private static var sigint: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        return set
    }

    init(pairing id: String, socket: String, json: Bool) {
        var set = Self.sigint
        pthread_sigmask(SIG_BLOCK, &set, nil)
        Thread.detachNewThread {
            var set = Self.sigint, signal: Int32 = 0
            while sigwait(&set, &signal) != 0 {}
            if pairingOver.load(ordering: .sequentiallyConsistent) { _exit(130) }
            interruptedByUser.store(true, ordering: .sequentiallyConsistent)
            let message: String
            do {
                _ = try RPCClient(path: socket).call(PairCancel.self, .init(id: id))
                message = "interrupted: pairing cancelled, annexd keeps nothing of it"
            } catch {
                message = "interrupted, but annexd did not cancel the pairing: \(error)"
            }
            if json {
                let error = JSONValue.object(["error": .object(["code": -1, "message": .string(message),
                                                                "data": .object(["reason": "interrupted"])])])
                FileHandle.standardOutput.write(Data((error.serialized() + "\n").utf8))
            } else {
                FileHandle.standardError.write(Data("\nannex-cli: \(message)\n".utf8))
            }
            // Not exit(): the main thread holds stdin's lock while it reads the code, and exit
            // flushes every stream. What the command printed is already out (it flushes).
            _exit(130)
        }
    }

    /// Rethrows `error` unless Ctrl-C was pressed: then the pairing failed because it was
    /// cancelled, and this waits for the interrupt's thread to say so and exit with 130.
    func rethrow(_ error: any Error) throws -> Never {
        if interruptedByUser.load(ordering: .sequentiallyConsistent) { while true { pause() } }
        throw error
    }

    deinit {
        pairingOver.store(true, ordering: .sequentiallyConsistent)
        var set = Self.sigint
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
