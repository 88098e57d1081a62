#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import AnnexdKit

/// A private Tor network on loopback (3 authorities, 2 relays, 1 client; `scripts/tor-testnet`),
/// started once per test process by the first test that asks for `shared()` (it pays the
/// ~20–30 s start-up; later callers get it at once, concurrent ones wait for the same start).
/// Every tor runs with `__OwningControllerProcess` = this process, so tor exits by itself
/// (within ~15 s) if the test run is killed; at a normal exit an atexit hook stops them at once.
///
/// Tests share the network and bring their own tors: `startExtraTor` starts one joined to it
/// (to host an onion with `HiddenServiceDir`, or as a SOCKS client of its own).
final class PrivateTorNetwork: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static let script = TestEnvironment.packageRoot + "/scripts/tor-testnet"
    static let startTimeout: TimeInterval = 120

    /// The network's directory: DIR/<name>/{torrc,log} per tor, DIR/network.json.
    let dir: String
    /// The client tor's SOCKS5 port and control port on 127.0.0.1 (cookie authentication).
    let socksPort: Int
    let controlPort: Int
    let controlCookiePath: String
    /// A torrc fragment with what any other tor needs to join (TestingTorNetwork, DirAuthority…).
    let joinTorrcPath: String
    let joinTorrcLines: [String]
    /// The network's own tors (authorities, relays, client).
    let pids: [Int32]
    /// Seconds from the script's start to the client's `Bootstrapped 100%`, and to a verified onion.
    let bootstrapSeconds: Double
    let readySeconds: Double
    /// Whether stop() and the exit hook remove `dir` (networks made here, not ones adopted).
    private let ownsDirectory: Bool
    private let lock = NSLock()
    private var nextExtraPort: Int
    private let lastExtraPort: Int
    private var extraCount = 0
    private var stopped = false

    // MARK: The shared network

    private enum State {
        case idle
        case starting
        case done(Result<PrivateTorNetwork, Error>)
    }
    private static let stateLock = NSCondition()
    nonisolated(unsafe) private static var state = State.idle

    /// The process-wide network, started on first use. A failed start is remembered: every later
    /// caller gets the same error instead of paying the timeout again.
    static func shared() throws -> PrivateTorNetwork {
        stateLock.lock()
        while case .starting = state { stateLock.wait() }
        if case .done(let result) = state {
            stateLock.unlock()
            return try result.get()
        }
        state = .starting
        stateLock.unlock()
        let result = Result { try PrivateTorNetwork.start() }
        if case .success(let net) = result { registerExitHook(net) }
        stateLock.lock()
        state = .done(result)
        stateLock.broadcast()
        stateLock.unlock()
        return try result.get()
    }

    /// The same from async code, waiting on a thread of its own rather than holding one of
    /// Swift concurrency's few cooperative threads for half a minute.
    static func shared() async throws -> PrivateTorNetwork {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<PrivateTorNetwork, Error>) in
            Thread { c.resume(with: Result { try PrivateTorNetwork.shared() }) }.start()
        }
    }

    /// The shared network if it was started, without starting it.
    static var sharedIfStarted: PrivateTorNetwork? {
        stateLock.lock()
        defer { stateLock.unlock() }
        if case .done(.success(let net)) = state { return net }
        return nil
    }

    nonisolated(unsafe) private static var exitHookNetwork: PrivateTorNetwork?

    private static func registerExitHook(_ net: PrivateTorNetwork) {
        exitHookNetwork = net
        atexit { PrivateTorNetwork.exitHookNetwork?.killAll() }
    }

    // MARK: Starting and stopping a network

    /// The tor binary, or a failure that says how to get one (tests must not silently skip).
    static func torPath() throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin"] {
            if FileManager.default.isExecutableFile(atPath: dir + "/tor") { return dir + "/tor" }
        }
        throw Failure(description: "tor is not installed (apt-get install tor): the private Tor network tests need it")
    }

    /// Starts a new network in a fresh /tmp/annexd-tn.XXXXXX (short, for unix socket paths) and
    /// waits until it is ready (`tor-testnet start` checks an onion is reachable through it).
    /// Its tors are owned by this process. The caller stops it (`stop()`); `shared()` is the usual way.
    static func start(timeout: TimeInterval = startTimeout) throws -> PrivateTorNetwork {
        _ = try torPath()
        var template = Array("/tmp/annexd-tn.XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let r = try Command.run([script, "start", dir, "--owner-pid", "\(getpid())", "--timeout", "\(Int(timeout))"])
        guard r.status == 0 else {
            _ = try? Command.run([script, "stop", dir])
            try? FileManager.default.removeItem(atPath: dir)
            throw Failure(description: "tor-testnet start failed (\(r.status)):\n\(r.stderr)")
        }
        return try PrivateTorNetwork(json: r.stdout, ownsDirectory: true)
    }

    /// A network from the JSON `tor-testnet start` printed.
    init(json: String, ownsDirectory: Bool) throws {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let dir = obj["dir"] as? String, let socks = obj["client_socks_port"] as? Int,
              let control = obj["client_control_port"] as? Int, let cookie = obj["client_control_cookie"] as? String,
              let join = obj["join_torrc"] as? String, let pids = obj["pids"] as? [Int],
              let extra = obj["extra_ports"] as? [Int], extra.count == 2 else {
            throw Failure(description: "unexpected output of tor-testnet start: \(json)")
        }
        self.dir = dir
        socksPort = socks
        controlPort = control
        controlCookiePath = cookie
        joinTorrcPath = join
        let text = try String(contentsOfFile: join, encoding: .utf8)
        joinTorrcLines = text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") && !$0.isEmpty }
        self.pids = pids.map { Int32($0) }
        bootstrapSeconds = obj["bootstrap_seconds"] as? Double ?? 0
        readySeconds = obj["ready_seconds"] as? Double ?? 0
        nextExtraPort = extra[0]
        lastExtraPort = extra[1]
        self.ownsDirectory = ownsDirectory
    }

    /// `tor-testnet stop`: every tor of the network, extra tors included (SIGTERM, then SIGKILL).
    @discardableResult
    func stop() throws -> String {
        let r = try Command.run([Self.script, "stop", dir])
        lock.withLock { stopped = true }
        guard r.status == 0 else { throw Failure(description: "tor-testnet stop \(dir) failed (\(r.status)):\n\(r.stdout)\(r.stderr)") }
        if ownsDirectory { try? FileManager.default.removeItem(atPath: dir) }
        return r.stdout
    }

    /// For the exit hook: no threads, no child processes; kills what still runs and removes `dir`.
    private func killAll() {
        if lock.withLock({ stopped }) { return }
        let all = pids + Self.pidFiles(in: dir)
        for pid in all where Self.isTor(pid, of: dir) { kill(pid, SIGTERM) }
        for _ in 0..<60 where all.contains(where: { Self.isTor($0, of: dir) }) { usleep(50_000) }
        for pid in all where Self.isTor(pid, of: dir) { kill(pid, SIGKILL) }
        if ownsDirectory { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// Pids of the tors started in `dir` (DIR/*/started.pid): the network's and extra ones.
    static func pidFiles(in dir: String) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).compactMap { name in
            (try? String(contentsOfFile: "\(dir)/\(name)/started.pid", encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    /// `pid` runs (not a zombie) and its command line names a file under `dir`: a tor of that network.
    static func isTor(_ pid: Int32, of dir: String) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let state = stat.split(separator: ")").last?.split(separator: " ").first, state != "Z",
              let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return cmdline.split(separator: 0).contains { String(decoding: $0, as: UTF8.self).hasPrefix(dir + "/") }
    }

    /// Every running process whose command line names a file under `dir` (for leak checks).
    static func processes(under dir: String) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter { isTor($0, of: dir) }
    }

    // MARK: Extra tors

    /// A free port from the network's reserved range (`extra_ports`), for an extra tor.
    private func takePort() throws -> Int {
        try lock.withLock {
            while nextExtraPort <= lastExtraPort {
                let port = nextExtraPort
                nextExtraPort += 1
                if OwnTor.loopbackPortIsFree(port) { return port }
            }
            throw Failure(description: "the network's extra ports are used up")
        }
    }

    /// Starts another tor joined to the network: the join lines, its own DataDirectory
    /// (DIR/x-NAME-N, 0700), a SOCKS port and a control port (cookie) from the network's range,
    /// owned by this process, plus `extraLines` (e.g. `HiddenServiceDir` and `HiddenServicePort`).
    /// With `waitBootstrapped` it returns once the tor logs `Bootstrapped 100%`.
    func startExtraTor(name: String, extraLines: [String] = [], waitBootstrapped: Bool = true,
                       timeout: TimeInterval = 120) throws -> TorChild {
        let tor = try Self.torPath()
        let n = lock.withLock { extraCount += 1; return extraCount }
        let dataDir = "\(dir)/x-\(name)-\(n)"
        guard mkdir(dataDir, 0o700) == 0 else { throw Failure(description: "mkdir \(dataDir): errno \(errno)") }
        let socks = try takePort(), control = try takePort()
        let lines = ["# \(name): an extra tor joined to the private network in \(dir)"] + joinTorrcLines + [
            "DataDirectory \(dataDir)",
            "Log notice file \(dataDir)/log",
            "SocksPort 127.0.0.1:\(socks)",
            "ControlPort 127.0.0.1:\(control)",
            "CookieAuthentication 1",
            "__OwningControllerProcess \(getpid())",
        ] + extraLines
        let torrc = dataDir + "/torrc", empty = dataDir + "/empty.torrc"
        try (lines.joined(separator: "\n") + "\n").write(toFile: torrc, atomically: true, encoding: .utf8)
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        // --quiet and a log file: tor writes nothing to the stdout pipe ChildProcess gives it.
        let child = try ChildProcess([tor, "--defaults-torrc", empty, "-f", torrc, "--quiet"], quietStderr: true)
        try? "\(child.pid)\n".write(toFile: dataDir + "/started.pid", atomically: true, encoding: .utf8)
        let t = TorChild(name: name, child: child, dataDir: dataDir, socksPort: socks, controlPort: control)
        if waitBootstrapped { try t.waitForLog("Bootstrapped 100%", timeout: timeout) }
        return t
    }
}

/// A tor started by `PrivateTorNetwork.startExtraTor`; stopped (SIGTERM, then SIGKILL) on deinit.
final class TorChild: @unchecked Sendable {
    let name: String
    let dataDir: String
    let socksPort: Int
    let controlPort: Int
    var pid: Int32 { child.pid }
    var torrcPath: String { dataDir + "/torrc" }
    var logPath: String { dataDir + "/log" }
    var controlCookiePath: String { dataDir + "/control_auth_cookie" }
    let started = Date()
    private let child: ChildProcess
    private let lock = NSLock()
    private var exitStatus: Int32?

    fileprivate init(name: String, child: ChildProcess, dataDir: String, socksPort: Int, controlPort: Int) {
        self.name = name
        self.child = child
        self.dataDir = dataDir
        self.socksPort = socksPort
        self.controlPort = controlPort
    }

    deinit { stop() }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log at \(logPath))" }

    /// Running: not exited, not a zombie waiting to be reaped.
    var isRunning: Bool {
        guard lock.withLock({ exitStatus == nil }),
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        return stat.split(separator: ")").last?.split(separator: " ").first != "Z"
    }

    /// SIGTERM, up to 5 s, then SIGKILL; reaps the child. Its exit status.
    @discardableResult
    func stop() -> Int32 {
        if let s = lock.withLock({ exitStatus }) { return s }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while isRunning && Date() < deadline { usleep(20_000) }
        if isRunning { kill(pid, SIGKILL) }
        let s = child.wait()
        lock.withLock { exitStatus = s }
        return s
    }

    /// Polls `condition` every 100 ms; fails if tor exits first or after `timeout`.
    func waitFor(_ what: String, timeout: TimeInterval = 120, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try condition() { return }
            guard isRunning else {
                throw PrivateTorNetwork.Failure(description: "tor \(name) exited before \(what):\n\(log)")
            }
            guard Date() < deadline else {
                throw PrivateTorNetwork.Failure(description: "tor \(name): no \(what) after \(Int(timeout)) s:\n\(log)")
            }
            usleep(100_000)
        }
    }

    func waitForLog(_ needle: String, timeout: TimeInterval = 120) throws {
        try waitFor("“\(needle)” in its log", timeout: timeout) { log.contains(needle) }
    }

    /// The onion address tor writes to `hsDir/hostname` (without the newline), once complete.
    func hostname(hiddenServiceDir hsDir: String, timeout: TimeInterval = 120) throws -> String {
        var hostname = ""
        try waitFor("\(hsDir)/hostname", timeout: timeout) {
            guard let text = try? String(contentsOfFile: hsDir + "/hostname", encoding: .utf8),
                  text.hasSuffix("\n") else { return false }
            hostname = String(text.dropLast())
            return true
        }
        return hostname
    }
}
