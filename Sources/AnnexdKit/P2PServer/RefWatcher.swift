#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Answers NOTIFYCHANGE: the first request at once with what the refs point at, then
/// by waiting until a ref changes and naming what the changed refs now point at. Like
/// git-annex, CHANGED names commit SHAs, not ref names: a client (git-annex's remotedaemon,
/// annexd's watcher) tells news from a SHA it does not have yet; a ref name would say nothing
/// of what changed. A ref that was deleted is named by nothing (all deleted: an empty CHANGED).
///
/// Only refs a peer fetches count (refs/heads/, refs/tags/: git-annex's default refspec), and
/// a CHANGED leaves out SHAs those refs already held (named before) when it has others: stock
/// remotedaemon fetches only when it has none of the SHAs named
/// (RemoteDaemon.Common.checkNewShas), so one it knows (refs/annex/last-index's tree, which
/// `git annex add` creates; synced/main catching up with main) beside the new commit would
/// hide the news. Every SHA a fetched ref takes is still named once, so a client that
/// remembers what it was told (ChangeMemory) finds a reconnect's full answer known.
///
/// Waiting is event-driven: inotify on the git directory (HEAD, packed-refs) and on
/// every directory under refs/, with a re-check every few seconds in case an event
/// is missed (another ref backend, a network filesystem). While it waits it also
/// watches the client's connection, so a client that goes away frees its session
/// at once instead of when some ref next changes.
final class RefWatcher {
    struct ClientGone: Error, CustomStringConvertible {
        var description: String { "the client closed the connection while waiting for a ref change" }
    }

    let repo: AnnexRepo
    private var last: [String: String]?
    /// Milliseconds between re-checks when no event comes.
    let fallbackInterval: Int32 = 5_000
    /// Microseconds to let a burst of ref updates finish after the first event (each one is a
    /// lock file renamed; a `git commit` moves one ref, `git annex sync` a few within ms). It
    /// is added to every change's propagation, so it is short: a ref that moves later is told
    /// in the next CHANGED.
    let settleDelay: UInt32 = 20_000
    private var inotifyFD: Int32 = -1
    private var watched: Set<String> = []
    private static let pollRDHUP: Int16 = 0x2000

    init(repo: AnnexRepo) { self.repo = repo }

    deinit { if inotifyFD >= 0 { close(inotifyFD) } }

    /// The changed refs; `hangup`: the client's connection, watched for its close.
    func waitForChange(hangup: Int32? = nil) throws -> [String] {
        guard var previous = last else {
            startWatching()
            let now = try refs()
            last = now
            return Self.shas(now.filter { Self.isFetched($0.key) }.values)
        }
        while true {
            let now = try refs()
            if now != previous {
                last = now
                if let news = Self.news(from: previous, to: now) { return news }
                previous = now  // only refs no peer fetches changed: nothing to tell
            }
            try waitForEvent(hangup: hangup)
        }
    }

    /// Refs a peer's `git fetch` takes (git-annex's remotes: +refs/heads/*; tags come along).
    static func isFetched(_ ref: String) -> Bool { ref.hasPrefix("refs/heads/") || ref.hasPrefix("refs/tags/") }

    /// What a CHANGED names when the refs went from `previous` to `now`: the SHAs of the changed
    /// fetched refs that no fetched ref held before, or, when all were held, all of them;
    /// nil when no fetched ref changed. (Deleted refs name nothing: all deleted, `[]`.)
    static func news(from previous: [String: String], to now: [String: String]) -> [String]? {
        let changed = Set(now.keys).union(previous.keys).filter { isFetched($0) && now[$0] != previous[$0] }
        guard !changed.isEmpty else { return nil }
        let shas = Self.shas(changed.compactMap { now[$0] })
        let before = Set(previous.filter { isFetched($0.key) }.values)
        let fresh = shas.filter { !before.contains($0) }
        return fresh.isEmpty ? shas : fresh
    }

    private func startWatching() {
        inotifyFD = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard inotifyFD >= 0 else { return }  // then the fallback interval is all there is
        addWatch(repo.gitDir)
        addTree(repo.gitDir + "/refs")
    }

    private func addTree(_ dir: String) {
        addWatch(dir)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            let path = dir + "/" + name
            if Posix.isDirectory(path) { addTree(path) }
        }
    }

    private func addWatch(_ dir: String) {
        guard inotifyFD >= 0, !watched.contains(dir) else { return }
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE)
        if inotify_add_watch(inotifyFD, dir, mask) >= 0 { watched.insert(dir) }
    }

    /// Until something under refs/ (or HEAD, packed-refs) changes, the fallback interval
    /// passes, or the client hangs up (thrown).
    private func waitForEvent(hangup: Int32?) throws {
        var fds: [pollfd] = []
        if inotifyFD >= 0 { fds.append(pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)) }
        if let hangup { fds.append(pollfd(fd: hangup, events: Self.pollRDHUP, revents: 0)) }
        let r = poll(&fds, nfds_t(fds.count), fallbackInterval)
        guard r > 0 else { return }
        if let hangup, let h = fds.first(where: { $0.fd == hangup }),
           h.revents & (Self.pollRDHUP | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
            throw ClientGone()
        }
        if inotifyFD >= 0, let i = fds.first(where: { $0.fd == inotifyFD }), i.revents & Int16(POLLIN) != 0 {
            var buf = [UInt8](repeating: 0, count: 4096)
            while read(inotifyFD, &buf, buf.count) > 0 {}
            addTree(repo.gitDir + "/refs")  // new ref directories
            usleep(settleDelay)  // git writes a lock file, then renames it, often several refs in a row
        }
    }

    /// Each SHA once, sorted (several refs often point at one commit).
    static func shas(_ values: some Sequence<String>) -> [String] { Set(values).sorted() }

    private func refs() throws -> [String: String] {
        let out = try Command.output(["git", "for-each-ref", "--format=%(objectname) %(refname)"], cwd: repo.path)
        var map: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { map[String(parts[1])] = String(parts[0]) }
        }
        return map
    }
}
