#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import AnnexdKit
import Shared

/// `annexd p2p-stdio REPO --client-uuid U` as a child (stdin a socket, stdout a pipe, stderr
/// captured to a file), driven by hand:
/// tests write raw protocol lines and bytes and read the replies, every read
/// bounded by a timeout so a wrong answer fails a test instead of hanging it.
final class P2PProcess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let defaultClientUUID = "c1c1c1c1-0000-4000-8000-000000000001"
    /// How long any single read or wait may take before the test fails.
    static let defaultTimeout: TimeInterval = TestEnvironment.seconds(10)  // scaled under a sanitizer

    let process = Process()
    let repo: String
    private var stdinFD: Int32
    private let stdoutFD: Int32
    private let stderrPath: String
    private var buffer: [UInt8] = []
    private(set) var atEOF = false

    /// Starts the session. `env` is added to the test's environment.
    init(repo: String, clientUUID: String = P2PProcess.defaultClientUUID, env: [String: String] = [:],
         extraArguments: [String] = []) throws {
        self.repo = repo
        // stdin is a socket so that writes after annexd hung up fail with EPIPE (MSG_NOSIGNAL)
        // instead of raising SIGPIPE in the test runner. Close-on-exec on every end: the child
        // gets its ends through dup2 onto 0/1, and no other child spawned meanwhile (tests run
        // in parallel) inherits them and keeps the connection open.
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &inPipe) == 0,
              pipe(&outPipe) == 0 else {
            throw Failure(description: "socketpair/pipe failed: errno \(errno)")
        }
        for fd in outPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        stdinFD = inPipe[1]
        stdoutFD = outPipe[0]
        var template = Array("/tmp/annexd-p2p-stderr.XXXXXX".utf8CString)
        let errFD = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        _ = fcntl(errFD, F_SETFD, FD_CLOEXEC)
        stderrPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }

        process.executableURL = URL(fileURLWithPath: TestEnvironment.annexd)
        process.arguments = ["p2p-stdio", repo, "--client-uuid", clientUUID] + extraArguments
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        process.environment = environment
        process.standardInput = FileHandle(fileDescriptor: inPipe[0], closeOnDealloc: false)
        process.standardOutput = FileHandle(fileDescriptor: outPipe[1], closeOnDealloc: false)
        process.standardError = FileHandle(fileDescriptor: errFD, closeOnDealloc: false)
        defer {
            close(inPipe[0])
            close(outPipe[1])
            close(errFD)
        }
        do {
            try process.run()
        } catch {
            close(stdinFD)
            close(stdoutFD)
            unlink(stderrPath)
            throw error
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        if stdinFD >= 0 { close(stdinFD) }
        close(stdoutFD)
        unlink(stderrPath)
    }

    // MARK: Writing

    /// Writes `line` and a newline.
    func send(_ line: String) throws {
        try sendRaw(Array(line.utf8) + [10])
    }

    /// Writes bytes as they are (DATA payloads, lines with odd bytes, no newline).
    func sendRaw(_ bytes: [UInt8]) throws {
        guard stdinFD >= 0 else { throw Failure(description: "stdin already closed") }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(stdinFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "write to annexd failed: errno \(errno) (session closed?)")
            }
            off += n
        }
    }

    /// Ends the client's side of the connection (annexd sees end of input).
    func closeStdin() {
        if stdinFD >= 0 { close(stdinFD) }
        stdinFD = -1
    }

    // MARK: Reading

    /// The next line without its newline; nil at end of output. Throws after `timeout` seconds.
    func readLine(timeout: TimeInterval = P2PProcess.defaultTimeout) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let i = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<i], as: UTF8.self)
                buffer.removeSubrange(...i)
                return line
            }
            if atEOF {
                guard !buffer.isEmpty else { return nil }
                // An unterminated last line.
                let line = String(decoding: buffer, as: UTF8.self)
                buffer.removeAll()
                return line
            }
            try fill(until: deadline, waitingFor: "a line")
        }
    }

    /// Exactly `count` raw bytes (a DATA payload). Throws on timeout or early end of output.
    func readBytes(_ count: Int, timeout: TimeInterval = P2PProcess.defaultTimeout) throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(timeout)
        while buffer.count < count {
            if atEOF { throw Failure(description: "output ended after \(buffer.count) of \(count) bytes") }
            try fill(until: deadline, waitingFor: "\(count) bytes")
        }
        let bytes = Array(buffer[..<count])
        buffer.removeSubrange(..<count)
        return bytes
    }

    /// Every remaining line until annexd closes its output.
    func readToEOF(timeout: TimeInterval = P2PProcess.defaultTimeout) throws -> [String] {
        var lines: [String] = []
        let deadline = Date().addingTimeInterval(timeout)
        while let line = try readLine(timeout: max(0.01, deadline.timeIntervalSinceNow)) { lines.append(line) }
        return lines
    }

    /// Reads and checks the greeting of a preauthenticated session; returns the server UUID.
    @discardableResult
    func expectGreeting() throws -> String {
        guard let line = try readLine(), line.hasPrefix("AUTH-SUCCESS ") else {
            throw Failure(description: "no AUTH-SUCCESS greeting; stderr: \(stderr)")
        }
        return String(line.dropFirst("AUTH-SUCCESS ".count))
    }

    /// Sends a line and returns the one-line answer.
    func request(_ line: String, timeout: TimeInterval = P2PProcess.defaultTimeout) throws -> String? {
        try send(line)
        return try readLine(timeout: timeout)
    }

    private func fill(until deadline: Date, waitingFor what: String) throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let ms = Int32(max(0, min(Double(Int32.max), deadline.timeIntervalSinceNow * 1000)))
            var pfd = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, ms)
            if r < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "poll failed: errno \(errno)")
            }
            if r == 0 {
                throw Failure(description: "timed out waiting for \(what) from annexd; buffered: \(String(decoding: buffer, as: UTF8.self).debugDescription); stderr: \(stderr)")
            }
            let n = chunk.withUnsafeMutableBytes { read(stdoutFD, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "read failed: errno \(errno)")
            }
            if n == 0 { atEOF = true } else { buffer.append(contentsOf: chunk[..<n]) }
            return
        }
    }

    // MARK: Exit

    /// Waits for annexd to exit and returns its status; kills it and throws after `timeout`.
    @discardableResult
    func waitForExit(timeout: TimeInterval = P2PProcess.defaultTimeout) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw Failure(description: "annexd did not exit within \(timeout) s; stderr: \(stderr)")
            }
            usleep(5000)
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Everything annexd wrote to stderr so far.
    var stderr: String {
        (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    }
}

// MARK: - A git-annex repository for driving annexd by hand

/// A scratch git-annex repository made by a stock git-annex (`git init && git annex init`).
struct TestRepo {
    let scratch: Scratch
    let annex: TestEnvironment.GitAnnex
    var path: String { scratch.path + "/repo" }

    init(annex: TestEnvironment.GitAnnex = TestEnvironment.gitAnnexVersions[0], name: String = "annexd-p2p") throws {
        self.annex = annex
        scratch = Scratch(name)
        try sh("git init -q repo && cd repo && git annex init -q test", in: scratch.path, annex: annex)
    }

    @discardableResult
    func shell(_ script: String, allowFailure: Bool = false) throws -> String {
        try sh(script, in: path, annex: annex, allowFailure: allowFailure)
    }

    /// Runs a shell command in the repository; returns its exit status and combined output.
    func run(_ script: String, annex other: TestEnvironment.GitAnnex? = nil) throws -> (status: Int32, output: String) {
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = (other ?? annex).binDir + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let r = try Command.run(["sh", "-c", script], cwd: path, environment: env)
        return (r.status, r.stdout + r.stderr)
    }

    /// Writes `name`, annexes and commits it; returns its key.
    func addFile(_ name: String, _ contents: [UInt8]) throws -> String {
        _ = FileManager.default.createFile(atPath: path + "/" + name, contents: Data(contents))
        try shell("git annex add -q '\(name)' && git commit -qm '\(name)'")
        return try shell("git annex lookupkey '\(name)'").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Where git-annex keeps (or would keep) the key's content, as git-annex itself computes it.
    func objectPath(_ key: String) throws -> String {
        let rel = try shell("git annex examinekey --format='${hashdirmixed}${key}/${key}' '\(key)'")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return path + "/.git/annex/objects/" + rel
    }

    /// The partial download of a key (keys used in tests need no keyFile escaping).
    func partialPath(_ key: String) -> String { path + "/.git/annex/tmp/" + key }

    func contents(_ file: String) -> [UInt8]? {
        FileManager.default.contents(atPath: file).map { [UInt8]($0) }
    }

    /// Every file (path relative to .git/annex, with its bytes) under the object store and the tmp dir.
    func annexFiles() -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        let base = path + "/.git/annex"
        for sub in ["objects", "tmp"] {
            guard let e = FileManager.default.enumerator(atPath: base + "/" + sub) else { continue }
            while let rel = e.nextObject() as? String {
                let full = base + "/" + sub + "/" + rel
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue {
                    out[sub + "/" + rel] = contents(full) ?? []
                }
            }
        }
        return out
    }

    /// Every path anywhere under the scratch directory whose name contains `fragment`.
    func filesNamed(containing fragment: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: scratch.path) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            if (rel as NSString).lastPathComponent.contains(fragment) { out.append(rel) }
        }
        return out
    }

    /// A p2p-stdio session on this repository, past its AUTH-SUCCESS greeting.
    func session(env: [String: String] = [:]) throws -> P2PProcess {
        let p = try P2PProcess(repo: path, env: env)
        try p.expectGreeting()
        return p
    }
}

/// The SHA256 key git-annex's default backend gives `contents` (SHA256E with extension `ext`, or SHA256).
func sha256Key(_ contents: [UInt8], ext: String? = nil) -> String {
    let h = HashAlgorithm.sha256.makeHasher()
    h.update(contents)
    let hex = h.finalizeHex()
    if let ext { return "SHA256E-s\(contents.count)--\(hex)\(ext)" }
    return "SHA256-s\(contents.count)--\(hex)"
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
