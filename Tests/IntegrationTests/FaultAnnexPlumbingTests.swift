#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection in git-annex itself: the client annexd's PATH starts with a `git-annex`
/// wrapper that, as a file in its directory says, fails its queries (find, whereis) with a
/// message, or hangs in them. A failing query is an RPC error carrying git-annex's message;
/// a hanging one is killed (with what it started) after --plumbing-timeout and is an
/// annex_timeout error; the daemon serves on, and once git-annex behaves the get works.
@Suite(.serialized, .timeLimit(minutes: 5)) struct FaultAnnexPlumbingTests {
    /// Seconds a query may take in these tests.
    static let limit = 3.0
    /// How long the hanging wrapper sleeps: unlikely to match any other process's sleep.
    static let hangSeconds = 3517

    /// A directory holding the wrapper; `setMode` picks fail, hang or "" (pass through).
    final class Wrapper {
        let scratch = Scratch("annexd-fault-annex")
        var annex: TestEnvironment.GitAnnex { .init(name: "wrapper", binDir: scratch.path) }

        init(real: TestEnvironment.GitAnnex) throws {
            let script = """
                #!/bin/sh
                case "$(cat '\(scratch.path)/mode' 2>/dev/null):$1" in
                fail:find|fail:whereis) echo "git-annex: $1: simulated failure (fault injection)" >&2; exit 1 ;;
                hang:find|hang:whereis) exec sleep \(FaultAnnexPlumbingTests.hangSeconds) ;;
                esac
                exec '\(real.gitAnnex)' "$@"

                """
            try script.write(toFile: scratch.path + "/git-annex", atomically: true, encoding: .utf8)
            chmod(scratch.path + "/git-annex", 0o755)
        }

        func setMode(_ mode: String) throws {
            try mode.write(toFile: scratch.path + "/mode", atomically: true, encoding: .utf8)
        }
    }

    /// The RPC error `body` throws: its reason and message.
    private func rpcError(_ body: () throws -> Any) -> (reason: String, message: String)? {
        do { _ = try body() } catch let e as RPCError {
            return (e.data["reason"]?.stringValue ?? "", e.message)
        } catch { return nil }
        return nil
    }

    /// Processes still running the hanging wrapper's sleep.
    private func leftoverSleeps() throws -> Int {
        try sh("ps -eo args | grep -c '^sleep \(Self.hangSeconds)$' || true", in: "/")
            .split(separator: "\n").compactMap { Int($0) }.first ?? -1
    }

    @Test func failingAndHangingGitAnnexAreClearErrorsAndTheDaemonServesOn() throws {
        let wrapper = try Wrapper(real: TestEnvironment.gitAnnexVersions[0])
        let f = try TransferFixture(files: ["big": 1 << 20],
                                    clientDaemon: (wrapper.annex, ["--plumbing-timeout", "\(Self.limit)"]))

        try wrapper.setMode("fail")
        let failed = rpcError { try f.start("get", paths: ["big"]) }
        #expect(failed?.reason == "not_annexed", "\(String(describing: failed))")
        #expect(failed?.message.contains("simulated failure (fault injection)") == true, "git-annex's own message: \(String(describing: failed))")
        try FaultChecks.expectServing(f.daemon.process)

        try wrapper.setMode("hang")
        let started = Date()
        let hung = rpcError { try f.start("get", paths: ["big"]) }
        let took = Date().timeIntervalSince(started)
        #expect(hung?.reason == "annex_timeout", "\(String(describing: hung))")
        #expect(hung?.message.contains("did not finish within 3 s") == true, "\(String(describing: hung))")
        #expect(took >= Self.limit - 0.5 && took < Self.limit + 5, "answered after \(took) s with a \(Self.limit) s limit")
        #expect(try leftoverSleeps() == 0, "the hanging git-annex was killed")
        // Other requests were served while the query hung, and are now.
        try FaultChecks.expectServing(f.daemon.process)

        try wrapper.setMode("")
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let end = try f.wait(id)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
    }

    /// While one transfer.start waits on a hung git-annex, another client is served at once.
    @Test func aHungQueryDoesNotHoldUpOtherRequests() throws {
        let wrapper = try Wrapper(real: TestEnvironment.gitAnnexVersions[0])
        let f = try TransferFixture(files: ["big": 1 << 20],
                                    clientDaemon: (wrapper.annex, ["--plumbing-timeout", "\(Self.limit)"]))
        try wrapper.setMode("hang")
        let slow = try f.daemon.process.connect()
        try slow.send(#"{"jsonrpc":"2.0","id":1,"method":"transfer.start","params":{"repo":"\#(f.client)","direction":"get","paths":["big"]}}"#)
        usleep(500_000)
        let started = Date()
        try FaultChecks.expectServing(f.daemon.process)
        let list = try f.daemon.process.call("transfer.list")
        #expect(list["transfers"]?.arrayValue?.isEmpty == true, "\(list)")
        #expect(Date().timeIntervalSince(started) < 1, "served while the query hung")
        let answer = try #require(try slow.readJSON(timeout: Self.limit + 5))
        #expect(answer["error"]?["data"]?["reason"]?.stringValue == "annex_timeout", "\(answer)")
        // git-annex's fault, not the caller's: the git-annex error code, not invalid params.
        #expect(answer["error"]?["code"]?.intValue == Int64(AnnexdErrorCode.gitAnnexError.rawValue), "\(answer)")
    }
}
