import Foundation
@testable import AnnexdKit

/// Where the real programs are: annexd under test, and both stock git-annex versions.
enum TestEnvironment {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        fatalError("package root not found above \(#filePath)")
    }()

    /// The sanitizer this run is under (scripts/test-sanitizers sets ANNEXD_TESTS_SANITIZER), if
    /// any. Resident-size bounds do not hold there: ASan keeps freed memory in quarantine and
    /// adds shadow memory and redzones by design, TSan its shadow; every other check does.
    static let sanitizer: String? = ProcessInfo.processInfo.environment["ANNEXD_TESTS_SANITIZER"]

    /// Whether resident-size bounds are checked (not under a sanitizer; see `sanitizer`).
    static var checksResidentSize: Bool { sanitizer == nil }

    /// A latency bound of the product (a commit merged within 5 s), four times as long under a
    /// sanitizer, which runs the same code several times slower.
    static func seconds(_ s: Double) -> Double { sanitizer == nil ? s : 4 * s }

    /// The annexd binary built with the tests (ANNEXD_BIN overrides).
    static let annexd: String = {
        if let p = ProcessInfo.processInfo.environment["ANNEXD_BIN"] { return p }
        for config in ["debug", "release"] {
            let p = "\(packageRoot)/.build/\(config)/annexd"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        fatalError("annexd binary not found: run `swift build` (or set ANNEXD_BIN)")
    }()

    /// The annex-tor-helper binary: ANNEX_TOR_HELPER_BIN, else beside the test bundle (any
    /// --scratch-path), else .build/{debug,release}.
    static let torHelper: String = {
        if let p = ProcessInfo.processInfo.environment["ANNEX_TOR_HELPER_BIN"] { return p }
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        for dir in [besideTests, "\(packageRoot)/.build/debug", "\(packageRoot)/.build/release"] {
            let p = dir + "/annex-tor-helper"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        fatalError("annex-tor-helper binary not found: run `swift build` (or set ANNEX_TOR_HELPER_BIN)")
    }()

    static let fakeSSH = "\(packageRoot)/scripts/fake-ssh"

    /// A stock git-annex installation: the directory holding git-annex and git-annex-shell.
    struct GitAnnex: CustomStringConvertible, Sendable {
        let name: String
        let binDir: String
        var description: String { name }
        var gitAnnex: String { binDir + "/git-annex" }
        var gitAnnexShell: String { binDir + "/git-annex-shell" }
    }

    /// Debian's 10.20230126 (apt) and PyPI's current one (the venv `make test` creates).
    static let gitAnnexVersions: [GitAnnex] = {
        let venv = ProcessInfo.processInfo.environment["ANNEXD_PYPI_VENV"] ?? "\(packageRoot)/.venv"
        return [GitAnnex(name: "debian", binDir: "/usr/bin"), GitAnnex(name: "pypi", binDir: venv + "/bin")]
    }()
}

/// A scratch directory removed at the end of a test.
final class Scratch {
    let path: String
    init(_ name: String = "annexd-test") {
        var template = Array("/tmp/\(name).XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { _ = try? Command.run(["chmod", "-R", "u+w", path]); try? FileManager.default.removeItem(atPath: path) }
}

struct ShellError: Error, CustomStringConvertible {
    let description: String
}

/// Runs a shell command line in `cwd` with git identity set, and the given git-annex first in PATH.
@discardableResult
func sh(_ script: String, in cwd: String, annex: TestEnvironment.GitAnnex? = nil, env extra: [String: String] = [:],
        allowFailure: Bool = false) throws -> String {
    var env = ProcessInfo.processInfo.environment
    env["GIT_AUTHOR_NAME"] = "annexd test"; env["GIT_AUTHOR_EMAIL"] = "test@example.invalid"
    env["GIT_COMMITTER_NAME"] = "annexd test"; env["GIT_COMMITTER_EMAIL"] = "test@example.invalid"
    if let annex { env["PATH"] = annex.binDir + ":" + (env["PATH"] ?? "/usr/bin:/bin") }
    for (k, v) in extra { env[k] = v }
    let r = try Command.run(["sh", "-c", script], cwd: cwd, environment: env)
    if r.status != 0 && !allowFailure {
        throw ShellError(description: "`\(script)` in \(cwd) failed (\(r.status)):\n\(r.stdout)\n\(r.stderr)")
    }
    return r.stdout + r.stderr
}

/// Two repositories: `server` (served by annexd p2p-stdio through a fake ssh) and its clone `client`.
struct RepoPair {
    let scratch: Scratch
    let annex: TestEnvironment.GitAnnex
    var server: String { scratch.path + "/server" }
    var client: String { scratch.path + "/client" }

    /// Environment routing the client's ssh remote to annexd p2p-stdio.
    var sshEnv: [String: String] {
        ["GIT_SSH_COMMAND": TestEnvironment.fakeSSH, "GIT_ANNEX_USE_GIT_SSH": "1", "ANNEXD": TestEnvironment.annexd]
    }

    init(annex: TestEnvironment.GitAnnex, bareServer: Bool = false) throws {
        self.annex = annex
        scratch = Scratch("annexd-\(annex.name)")
        let root = scratch.path
        if bareServer {
            try sh("git init -q --bare server && cd server && git annex init -q server", in: root, annex: annex)
        } else {
            try sh("git init -q server && cd server && git annex init -q server", in: root, annex: annex)
        }
        try sh("git clone -q ssh://localhost\(root)/server client && cd client && git annex init -q client",
               in: root, annex: annex, env: sshEnv)
    }

    @discardableResult
    func client(_ script: String, allowFailure: Bool = false) throws -> String {
        try sh(script, in: client, annex: annex, env: sshEnv, allowFailure: allowFailure)
    }

    @discardableResult
    func server(_ script: String, allowFailure: Bool = false) throws -> String {
        try sh(script, in: server, annex: annex, allowFailure: allowFailure)
    }

    func uuid(of repo: String) throws -> String {
        try sh("git config annex.uuid", in: repo).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// UUIDs git-annex's location log lists for `key`, as seen from `repo`.
    func whereis(_ key: String, in repo: String) throws -> Set<String> {
        let out = try sh("git annex whereis --json --key \(key)", in: repo, annex: annex, allowFailure: true)
        guard let data = out.split(separator: "\n").first(where: { $0.hasPrefix("{") }),
              let obj = try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any],
              let list = obj["whereis"] as? [[String: Any]] else { return [] }
        return Set(list.compactMap { $0["uuid"] as? String })
    }
}

/// Byte-for-byte equality of two files, following symlinks (annexed files are symlinks).
func sameBytes(_ a: String, _ b: String) -> Bool {
    guard let x = FileManager.default.contents(atPath: a), let y = FileManager.default.contents(atPath: b) else { return false }
    return x == y
}
