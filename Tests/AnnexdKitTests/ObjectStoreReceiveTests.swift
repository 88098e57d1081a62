#if canImport(Glibc)
import Glibc
#endif
import CShims
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Receiving content through a connection into the object store: the inline
/// hasher (small content) and the pipelined zero-copy path (large content)
/// must both refuse wrong bytes and accept right ones.
@Suite struct ObjectStoreReceiveTests {
    final class Repo {
        let dir: String
        let store: ObjectStore
        init() throws {
            var template = Array("/tmp/annexd-store.XXXXXX".utf8CString)
            dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
            _ = try Command.output(["git", "init", "-q", dir])
            _ = try Command.output(["git", "annex", "init", "-q", "store-test"], cwd: dir)
            store = ObjectStore(repo: try AnnexRepo(path: dir))
        }
        deinit {
            store.log.close()
            _ = try? Command.run(["chmod", "-R", "u+w", dir])
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// Feeds `payload` through a pipe into `receive`, in a writer thread.
    func receive(_ payload: [UInt8], into incoming: IncomingContent, announced: Int64) throws -> Int64 {
        var fds: [Int32] = [0, 0]
        // Close-on-exec: a child another test spawns meanwhile must not keep the write end open.
        #expect(annexd_pipe_cloexec(&fds) == 0)
        let writeFD = fds[1]
        let writer = Thread {
            payload.withUnsafeBytes { try? Posix.writeAll(fd: writeFD, $0, what: "test pipe") }
            close(writeFD)
        }
        writer.start()
        let conn = FDConnection(readFD: fds[0], writeFD: -1)
        defer { close(fds[0]) }
        return try incoming.receive(from: conn, count: announced)
    }

    static func key(for content: [UInt8]) throws -> AnnexKey {
        let h = HashAlgorithm.sha256.makeHasher()
        h.update(content)
        return try AnnexKey(parsing: "SHA256-s\(content.count)--\(h.finalizeHex())")
    }

    @Test(arguments: [1000, 6 << 20])
    func rightContentIsStored(size: Int) throws {
        let repo = try Repo()
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let key = try Self.key(for: content)
        let incoming = try repo.store.beginReceive(key, offset: 0)
        #expect(try receive(content, into: incoming, announced: Int64(size)) == Int64(size))
        try repo.store.commit(incoming)
        let path = try #require(repo.store.contentPath(key))
        #expect(FileManager.default.contents(atPath: path) == Data(content))
    }

    @Test(arguments: [1000, 6 << 20])
    func wrongContentIsRefusedAndDiscarded(size: Int) throws {
        let repo = try Repo()
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let key = try Self.key(for: content)
        var wrong = content
        wrong[size / 2] ^= 1
        let incoming = try repo.store.beginReceive(key, offset: 0)
        #expect(try receive(wrong, into: incoming, announced: Int64(size)) == Int64(size))
        #expect(throws: ObjectStore.StoreError.self) { try repo.store.commit(incoming) }
        #expect(repo.store.contentPath(key) == nil)
        #expect(repo.store.partialSize(key) == 0)
    }

    @Test(arguments: [1000, 6 << 20])
    func shortDataKeepsThePartialForResume(size: Int) throws {
        let repo = try Repo()
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let key = try Self.key(for: content)
        let first = try repo.store.beginReceive(key, offset: 0)
        let cut = size / 3
        #expect(try receive(Array(content[..<cut]), into: first, announced: Int64(size)) == Int64(cut))
        first.closeFile()
        #expect(repo.store.partialSize(key) == Int64(cut))
        // Resume: the kept prefix is rehashed, the rest arrives, the whole verifies.
        let second = try repo.store.beginReceive(key, offset: Int64(cut))
        #expect(try receive(Array(content[cut...]), into: second, announced: Int64(size - cut)) == Int64(size - cut))
        try repo.store.commit(second)
        #expect(FileManager.default.contents(atPath: try #require(repo.store.contentPath(key))) == Data(content))
    }

    /// A read that fails part way through a pipeline buffer (here: the socket's receive timeout,
    /// as a stalled peer) keeps every byte that arrived before it, so a resume asks only for the rest.
    @Test func aReadErrorMidBufferKeepsWhatArrived() throws {
        let repo = try Repo()
        let size = 6 << 20, cut = (1 << 20) + 12345
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let key = try Self.key(for: content)
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
        #expect(setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0)
        let writeFD = fds[1]
        let released = DispatchSemaphore(value: 0)
        Thread {
            content[..<cut].withUnsafeBytes { try? Posix.writeAll(fd: writeFD, $0, what: "test socket") }
            released.wait()
            close(writeFD)
        }.start()
        defer { released.signal(); close(fds[0]) }
        let incoming = try repo.store.beginReceive(key, offset: 0)
        let conn = FDConnection(readFD: fds[0], writeFD: -1)
        #expect(throws: SystemError.self) { try incoming.receive(from: conn, count: Int64(size)) }
        incoming.closeFile()
        #expect(repo.store.partialSize(key) == Int64(cut))
        let second = try repo.store.beginReceive(key, offset: Int64(cut))
        #expect(try receive(Array(content[cut...]), into: second, announced: Int64(size - cut)) == Int64(size - cut))
        try repo.store.commit(second)
        #expect(FileManager.default.contents(atPath: try #require(repo.store.contentPath(key))) == Data(content))
    }
}
