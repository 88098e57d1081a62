#if canImport(Glibc)
import Glibc
#endif
import CShims
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// P2PClient.connectService (CONNECT's shell) against annexd's own server session over a
/// socketpair, its git service real: and a server that goes quiet, for the idle limit.
@Suite(.serialized, .timeLimit(minutes: 10)) struct ClientConnectShellTests {
    /// A socketpair: the client's end, and a thread running `server` on the other.
    static func pair(_ server: @escaping @Sendable (Int32) -> Void) throws -> Int32 {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { throw SystemError("socketpair") }
        let serverFD = fds[0]
        Thread { server(serverFD); close(serverFD) }.start()
        return fds[1]
    }

    /// Close-on-exec: other tests of this process spawn children all the time, and one that
    /// inherited the write end would keep `readAll` from ever seeing the end of the output.
    static func pipeFDs() throws -> (read: Int32, write: Int32) {
        var p: [Int32] = [-1, -1]
        guard annexd_pipe_cloexec(&p) == 0 else { throw SystemError("pipe") }
        return (p[0], p[1])
    }

    static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return out }
            out += buf[0..<n]
        }
    }

    @Test func uploadPackThroughAnnexdsServer() throws {
        let repo = try ScratchServerRepo(files: ["small.txt"])
        let store = repo.store
        let clientFD = try Self.pair { fd in
            let session = P2PServerSession(connection: FDConnection(readFD: fd, writeFD: fd), store: store,
                                           config: .init(serverUUID: store.repo.uuid, preauthenticated: true), report: { _ in })
            try? session.run()
        }
        let client = P2PClient(connection: FDConnection(readFD: clientFD, writeFD: clientFD), store: nil, ownsFD: true)
        defer { client.close() }
        try client.connect()
        // git's side: a flush packet (no wants) ends upload-pack after its advertisement.
        let toService = try Self.pipeFDs(), fromService = try Self.pipeFDs()
        _ = "0000".withCString { write(toService.write, $0, 4) }
        let code = try client.connectService("git-upload-pack", input: toService.read, output: fromService.write)
        close(fromService.write)
        let advertised = String(decoding: Self.readAll(fromService.read), as: UTF8.self)
        close(toService.write); close(toService.read); close(fromService.read)
        #expect(code == 0)
        let annex = try Command.output(["git", "rev-parse", "refs/heads/git-annex"], cwd: store.repo.path)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(advertised.contains("\(annex) refs/heads/git-annex") && advertised.hasSuffix("0000"), "\(advertised)")
    }

    @Test func aQuietServerIsBrokenOff() throws {
        let clientFD = try Self.pair { fd in
            let conn = FDConnection(readFD: fd, writeFD: fd)
            conn.send(.authSuccess(uuid: "11111111-1111-4111-8111-111111111111"))
            try? conn.flush()
            _ = try? conn.readLine()  // VERSION
            conn.send(.version(1))
            try? conn.flush()
            _ = try? conn.readLine()  // CONNECT
            try? Array("DATA 3\nabc".utf8).withUnsafeBytes { try conn.sendRaw($0) }
            // Then nothing, until the client hangs up.
            while (try? conn.readLine()) != nil {}
        }
        let client = P2PClient(connection: FDConnection(readFD: clientFD, writeFD: clientFD), store: nil, ownsFD: true)
        defer { client.close() }
        try client.connect()
        let toService = try Self.pipeFDs(), fromService = try Self.pipeFDs()
        defer { [toService.read, toService.write, fromService.read].forEach { close($0) } }
        let started = Date()
        #expect(throws: P2PClient.RelayStalled.self) {
            _ = try client.connectService("git-upload-pack", input: toService.read, output: fromService.write, idleTimeout: 1)
        }
        close(fromService.write)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(Self.readAll(fromService.read) == Array("abc".utf8))
    }
}
