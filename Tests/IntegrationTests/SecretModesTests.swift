#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Secrets stay the user's own: after two daemons have added repositories (onion keys), invited
/// and linked (tokens, tor-annex credentials) and moved a file (queue, transfer logs), nothing
/// in either state directory and nothing annexd wrote under .git/annex/creds can be read or
/// entered by another uid.
@Suite(.serialized, .timeLimit(minutes: 5)) struct SecretModesTests {
    /// Every path under `root` whose mode lets group or others in, with its mode.
    static func openToOthers(under root: String) -> [String] {
        var found: [String] = []
        guard let walker = FileManager.default.enumerator(atPath: root) else { return ["cannot list \(root)"] }
        for case let relative as String in walker {
            let path = root + "/" + relative
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT != S_IFLNK else { continue }
            if st.st_mode & 0o077 != 0 { found.append("\(relative) \(String(st.st_mode & 0o7777, radix: 8))") }
        }
        return found
    }

    @Test func stateDirectoriesAndCredentialsAreOwnerOnly() throws {
        let f = try TransferFixture(files: ["a": 10_000])
        let ids = try f.start("get", paths: ["a"]).compactMap { $0["id"]?.stringValue }
        #expect(ids.count == 1)
        for id in ids { #expect(try f.wait(id)["state"]?.stringValue == "done") }
        let daemons = [f.daemon] + (f.serving.map { [$0] } ?? [])
        for d in daemons {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: d.stateDir)) ?? []
            // Not an empty walk: the registry and at least one onion key are there to check.
            #expect(names.contains("registry.json"), "\(d.stateDir): \(names)")
            var st = stat()
            #expect(stat(d.stateDir, &st) == 0 && st.st_mode & 0o077 == 0, "\(d.stateDir) \(String(st.st_mode & 0o777, radix: 8))")
            #expect(Self.openToOthers(under: d.stateDir) == [], "state directory \(d.stateDir)")
        }
        let creds = f.client + "/.git/annex/creds"
        let written = (try? FileManager.default.contentsOfDirectory(atPath: creds)) ?? []
        #expect(!written.isEmpty, "peer.link wrote no tor-annex credentials in \(creds)")
        #expect(Self.openToOthers(under: creds) == [], "credentials in \(creds)")
    }
}
