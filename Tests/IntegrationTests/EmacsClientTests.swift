import Foundation
import Testing

/// contrib/emacs (annexd.el, annexd-buffers.el): byte-compiled without a warning, and its ERT
/// tests (contrib/emacs/annexd-tests.el) run under `emacs --batch` against a real annexd serving
/// a clone linked to another annexd through the SOCKS stand-in: get and drop from dired, copy
/// to the peer, the transfers buffer following a transfer to its end, the event stream resuming
/// by id after a dropped connection, the peers buffer, errors in clear words.
@Suite(.timeLimit(minutes: 10)) struct EmacsClientTests {
    static let dir = TestEnvironment.packageRoot + "/contrib/emacs"
    static let emacs = ["/usr/bin/emacs", "/usr/local/bin/emacs", "/bin/emacs"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test(.enabled(if: emacs != nil, "needs emacs (Debian's emacs-nox; make deps installs it)"))
    func byteCompilesWithoutWarnings() throws {
        let scratch = Scratch("annexd-emacs-compile")
        let files = ["annexd.el", "annexd-buffers.el", "annexd-tests.el"]
        for f in files { try FileManager.default.copyItem(atPath: Self.dir + "/" + f, toPath: scratch.path + "/" + f) }
        let r = try DaemonProcess.run([Self.emacs!, "--batch", "-Q", "-L", scratch.path,
                                       "--eval", "(setq byte-compile-error-on-warn t)", "-f", "batch-byte-compile"]
                                      + files.map { scratch.path + "/" + $0 }, timeout: 120)
        #expect(r.status == 0, "byte-compile failed (\(r.status)):\n\(r.stdout)\n\(r.stderr)")
        #expect(!r.stderr.contains("Warning"), "\(r.stderr)")
        for f in files { #expect(FileManager.default.fileExists(atPath: scratch.path + "/" + f + "c"), "no \(f)c") }
    }

    @Test(.enabled(if: emacs != nil, "needs emacs (Debian's emacs-nox; make deps installs it)"))
    func ertTestsPassAgainstARealAnnexd() throws {
        let f = try TransferFixture(files: ["got": 1_000_000, "watched": 2_000_000, "resumed": 500_000, "restarted": 300_000])
        let env = ProcessInfo.processInfo.environment
        let restarter = Restarter(f.daemon)
        let r = try DaemonProcess.run(
            [Self.emacs!, "--batch", "-Q", "-L", Self.dir, "-l", "ert", "-l", "annexd-tests.el", "-f", "ert-run-tests-batch-and-exit"],
            env: ["ANNEXD_SOCKET": f.daemon.socket, "ANNEXD_TEST_REPO": f.client, "ANNEXD_TEST_SERVER": f.server,
                  "PATH": f.annex.binDir + ":" + (env["PATH"] ?? "/usr/bin:/bin"),
                  "GIT_AUTHOR_NAME": "annexd test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
                  "GIT_COMMITTER_NAME": "annexd test", "GIT_COMMITTER_EMAIL": "test@example.invalid"],
            cwd: Self.dir, timeout: 300)
        let restarts = restarter.stop()
        #expect(restarts == 1, "annexd was started again \(restarts) times; the restart test asks once")
        #expect(r.status == 0, "ERT failed (\(r.status)):\n\(r.stdout)\n\(r.stderr)\nannexd:\n\(f.daemon.process.log)\n\(restarter.errors)")
        // ERT reports on stderr; every test ran (none skipped, none missing).
        let ran = r.stderr.split(separator: "\n").first { $0.hasPrefix("Ran ") } ?? ""
        #expect(ran.hasPrefix("Ran 8 tests, 8 results as expected, 0 unexpected"), "\(r.stderr)")
        #expect(!ran.contains("skipped"), "\(r.stderr)")
    }
}

/// Starts the fixture's annexd again each time it exits (the ERT restart test stops it with
/// daemon.shutdown), on its own thread until `stop()`.
private final class Restarter: @unchecked Sendable {
    private let daemon: TransferFixture.Annexd
    private let lock = NSLock()
    private var stopping = false
    private var count = 0
    private(set) var errors: [String] = []
    private let finished = DispatchSemaphore(value: 0)

    init(_ daemon: TransferFixture.Annexd) {
        self.daemon = daemon
        Thread.detachNewThread { [self] in
            while !lock.withLock({ stopping }) {
                guard self.daemon.process.waitForExit(timeout: 0.1) != nil else { continue }
                do {
                    try self.daemon.start()
                    lock.withLock { count += 1 }
                } catch {
                    lock.withLock { errors.append("\(error)") }
                    break
                }
            }
            finished.signal()
        }
    }

    /// Stops watching: how many times annexd was started again.
    func stop() -> Int {
        lock.withLock { stopping = true }
        finished.wait()
        return lock.withLock { count }
    }
}
