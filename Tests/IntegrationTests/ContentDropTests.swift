#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// `content.drop` against real peers: two annexd daemons serving repoA and repoB, linked to
/// each other through the SOCKS stand-in for tor, both holding the same files; stock
/// git-annex reads the location logs and races a drop.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ContentDropTests {
    typealias Annexd = DaemonTorAnnexTests.Annexd

    /// repoA on daemon `a` (remote "b"), repoB on daemon `b` (remote "a"); `files` are in both,
    /// and each repository's log says so.
    final class Pair: @unchecked Sendable {
        let annex = TestEnvironment.gitAnnexVersions[0]
        let net: OnionNetwork
        let a: Annexd, b: Annexd
        let root: String
        var repoA: String { root + "/repoA" }
        var repoB: String { root + "/repoB" }
        let uuidA: String, uuidB: String

        init(files: [String]) throws {
            net = try OnionNetwork()
            a = try Annexd(net: net)
            b = try Annexd(net: net)
            root = a.scratch.path
            try sh("git init -q repoA && cd repoA && git annex init -q A && cd .. && git init -q repoB && cd repoB && git annex init -q B",
                   in: root, annex: annex)
            uuidA = try sh("git config annex.uuid", in: root + "/repoA").trimmingCharacters(in: .whitespacesAndNewlines)
            uuidB = try sh("git config annex.uuid", in: root + "/repoB").trimmingCharacters(in: .whitespacesAndNewlines)
            for (daemon, repo) in [(a, root + "/repoA"), (b, root + "/repoB")] {
                let info = try daemon.json("repo add \(repo)")
                try net.map("\(info["onion"]!.stringValue!):\(info["port"]!.intValue!)", to: info["socket"]!.stringValue!)
            }
            try link(a, repoA, to: b, repoB, as: "b")
            try link(b, repoB, to: a, repoA, as: "a")
            try add(files)
        }

        private func link(_ d: Annexd, _ repo: String, to peer: Annexd, _ peerRepo: String, as name: String) throws {
            let address = try #require(try peer.json("invite --repo \(peerRepo)")["address"]?.stringValue)
            try d.cli("remote add \(name) \(address) --repo \(repo)")
        }

        /// The same bytes added in both repositories (so the same keys), logs exchanged.
        func add(_ files: [String]) throws {
            for repo in [repoA, repoB] {
                let writes = files.map { "printf 'content of %s\\n' \($0) > \($0)" }.joined(separator: " && ")
                try sh("\(writes) && git annex add -q \(files.joined(separator: " ")) && git commit -qm add", in: repo, annex: annex)
            }
            try exchangeLogs()
        }

        /// Each repository merges the other's git-annex branch (over the local path).
        func exchangeLogs() throws {
            try sh("git fetch -q ../repoB +git-annex:refs/remotes/b/git-annex && git annex merge -q", in: repoA, annex: annex)
            try sh("git fetch -q ../repoA +git-annex:refs/remotes/a/git-annex && git annex merge -q", in: repoB, annex: annex)
        }

        func key(_ file: String) throws -> String {
            try sh("git annex lookupkey \(file)", in: repoA, annex: annex).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func has(_ repo: String, _ file: String) throws -> Bool {
            !(try sh("git annex contentlocation \(try key(file))", in: repo, annex: annex, allowFailure: true))
                .trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        }

        /// UUIDs the location log of `repo` lists for `file`'s key (untrusted ones too).
        func whereis(_ file: String, in repo: String) throws -> Set<String> {
            let out = try sh("git annex whereis --json --key \(try key(file))", in: repo, annex: annex, allowFailure: true)
            let record = try JSONValue(parsing: String(try #require(out.split(separator: "\n").first { $0.hasPrefix("{") })))
            return Set(((record["whereis"]?.arrayValue ?? []) + (record["untrusted"]?.arrayValue ?? [])).compactMap { $0["uuid"]?.stringValue })
        }

        /// content.drop on daemon `d`: its results.
        func drop(on d: Annexd, repo: String, paths: [String] = [], keys: [String] = [], from: String? = nil) throws -> [JSONValue] {
            var params: JSONObject = ["repo": .string(repo)]
            if !paths.isEmpty { params["paths"] = .array(paths.map { .string($0) }) }
            if !keys.isEmpty { params["keys"] = .array(keys.map { .string($0) }) }
            if let from { params["from"] = .string(from) }
            let result = try d.process.call("content.drop", .object(params), timeout: 60)
            return result["results"]?.arrayValue ?? []
        }
    }

    static func code(_ r: JSONValue?) -> String? { r?["error"]?["code"]?.stringValue }
    static func message(_ r: JSONValue?) -> String { r?["error"]?["message"]?.stringValue ?? "" }

    @Test func refusedUnlessEnoughCopiesAreVerifiedAndLocked() throws {
        let p = try Pair(files: ["f", "g"])

        // numcopies 2 with one other copy: refused, naming the copy it locked.
        try sh("git annex numcopies 2", in: p.repoA, annex: p.annex)
        var r = try p.drop(on: p.a, repo: p.repoA, paths: ["f"])
        #expect(r.count == 1 && r[0]["dropped"]?.boolValue == false && Self.code(r.first) == "unsafe_drop", "\(r)")
        #expect(Self.message(r.first).contains("could only verify 1 of the 2") && Self.message(r.first).contains("locked: b"), "\(r)")
        #expect(try p.has(p.repoA, "f"))

        // numcopies 1, the peer online holding a copy: dropped, and the log says so.
        try sh("git annex numcopies 1", in: p.repoA, annex: p.annex)
        r = try p.drop(on: p.a, repo: p.repoA, paths: ["f"])
        #expect(r.first?["dropped"]?.boolValue == true && r.first?["error"] == nil, "\(r)")
        #expect(r.first?["key"]?.stringValue == (try p.key("f")) && r.first?["from"]?.stringValue == p.uuidA)
        #expect(try !p.has(p.repoA, "f") && p.has(p.repoB, "f"))
        #expect(try p.whereis("f", in: p.repoA) == [p.uuidB])
        // Nothing left here to drop.
        #expect(Self.code(try p.drop(on: p.a, repo: p.repoA, paths: ["f"]).first) == "not_present")

        // mincopies from .gitattributes: two locked copies needed, one exists.
        try sh("echo 'g annex.mincopies=2' > .gitattributes", in: p.repoA)
        r = try p.drop(on: p.a, repo: p.repoA, paths: ["g"])
        #expect(Self.code(r.first) == "unsafe_drop" && Self.message(r.first).contains("mincopies requires"), "\(r)")
        try sh("rm .gitattributes", in: p.repoA)

        // An untrusted copy does not count, even online.
        try sh("git annex untrust b", in: p.repoA, annex: p.annex)
        r = try p.drop(on: p.a, repo: p.repoA, paths: ["g"])
        #expect(Self.code(r.first) == "unsafe_drop" && Self.message(r.first).contains("untrusted (do not count): b"), "\(r)")
        try sh("git annex semitrust b", in: p.repoA, annex: p.annex)

        // The peer offline: its copy cannot be verified.
        #expect(p.b.process.terminate() != nil)
        r = try p.drop(on: p.a, repo: p.repoA, paths: ["g"])
        #expect(Self.code(r.first) == "unsafe_drop" && Self.message(r.first).contains("could not check: b (peer_unreachable"), "\(r)")
        #expect(try p.has(p.repoA, "g"))

        // A trusted peer counts without being reached.
        try sh("git annex trust --force b", in: p.repoA, annex: p.annex)
        r = try p.drop(on: p.a, repo: p.repoA, keys: [try p.key("g")])
        #expect(r.first?["dropped"]?.boolValue == true, "\(r)")

        // Only bad params are errors; a path that is not annexed is a result.
        try sh("echo plain > plain && git add plain && git commit -qm plain", in: p.repoA)
        #expect(Self.code(try p.drop(on: p.a, repo: p.repoA, paths: ["plain"]).first) == "not_annexed")
        #expect(throws: RPCError.self) { try p.drop(on: p.a, repo: p.repoA, paths: ["g"], from: "nosuchremote") }
        #expect(throws: RPCError.self) { try p.drop(on: p.a, repo: p.repoA, keys: ["not a key"]) }
    }

    @Test func dropFromAnAnnexdPeerLeavesBothLogsAgreeing() throws {
        let p = try Pair(files: ["f", "g"])
        let r = try p.drop(on: p.a, repo: p.repoA, paths: ["f"], from: "b")
        #expect(r.first?["dropped"]?.boolValue == true && r.first?["from"]?.stringValue == p.uuidB, "\(r)")
        #expect(try p.has(p.repoA, "f") && !p.has(p.repoB, "f"))
        #expect(try p.whereis("f", in: p.repoA) == [p.uuidA])
        #expect(try p.whereis("f", in: p.repoB) == [p.uuidA])

        // By UUID, with numcopies 2 here: here is the only other copy, so refused.
        try sh("git annex numcopies 2", in: p.repoA, annex: p.annex)
        let refused = try p.drop(on: p.a, repo: p.repoA, paths: ["g"], from: p.uuidB)
        #expect(Self.code(refused.first) == "unsafe_drop" && Self.message(refused.first).contains("locked: here"), "\(refused)")
        #expect(try p.has(p.repoB, "g"))
    }

    /// annexd drops repoA's copy while stock `git annex drop` drops repoB's: the last two copies.
    /// Whatever the interleaving, at least one copy must remain.
    @Test func racingAStockDropNeverLeavesZeroCopies() throws {
        // annexd reads numcopies, trust and the log (a few git-annex runs) before it locks,
        // and stock git-annex takes a while to start: delaying one side or the other moves
        // annexd's locking from before stock's drop, through the middle, to after it.
        let annexdDelayMs = [-1200, -700, -400, -300, -200, -180, -160, -150, -140, -130, -120, -100, 0, 200]
        let files = annexdDelayMs.indices.map { "race\($0)" }
        let p = try Pair(files: files)
        var outcomes: [String] = []
        for (i, file) in files.enumerated() {
            let key = try p.key(file), delay = annexdDelayMs[i]
            let stock = Thread.detachedResult {
                usleep(useconds_t(max(0, -delay) * 1000))
                return try p.net.run("git annex drop \(file) 2>&1; true", in: p.repoB, annex: p.annex)
            }
            let annexd = Thread.detachedResult {
                usleep(useconds_t(max(0, delay) * 1000))
                return try p.drop(on: p.a, repo: p.repoA, keys: [key])
            }
            let ours = try annexd.wait()
            let stockOut = try stock.wait()
            let inA = try p.has(p.repoA, file), inB = try p.has(p.repoB, file)
            outcomes.append("\(file): annexd \(ours.first?["dropped"]?.boolValue == true ? "dropped" : String(Self.message(ours.first).dropFirst(90).prefix(120))), stock \(stockOut.contains(" ok") ? "dropped" : "refused"); A \(inA) B \(inB)")
            #expect(inA || inB, "zero copies of \(file): annexd \(ours), stock:\n\(stockOut)")
        }
        print(outcomes.joined(separator: "\n"))
    }
}

extension Thread {
    /// Runs `body` on a new thread; `wait()` returns its result.
    final class Result<T: Sendable>: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var value: Swift.Result<T, any Error>?
        fileprivate func set(_ v: Swift.Result<T, any Error>) { value = v; done.signal() }
        func wait() throws -> T { done.wait(); return try value!.get() }
    }

    static func detachedResult<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> Result<T> {
        let r = Result<T>()
        Thread { r.set(Swift.Result { try body() }) }.start()
        return r
    }
}
