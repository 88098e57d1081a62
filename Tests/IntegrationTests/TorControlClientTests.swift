#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import AnnexdKit
@testable import Shared

/// TorControlClient against the real tor (/usr/bin/tor), one tor per test, each with
/// `DisableNetwork 1` and `SocksPort 0`: no network is touched, yet authentication, GETINFO,
/// ADD_ONION/DEL_ONION, SETEVENTS and events all work. Every tor is killed when its test ends
/// (`defer`), and is owned by this process (`__OwningControllerProcess`) in case the runner dies.
@Suite(.timeLimit(minutes: 5)) struct TorControlClientTests {
    static let group = MultiThreadedEventLoopGroup.singleton

    // MARK: Authentication

    @Test func safeCookieOnAControlSocket() async throws {
        let tor = try await ControlTestTor(.socketWithCookie)
        defer { tor.stop() }
        let client = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await client.close() } }

        let info = try await client.protocolInfo()
        #expect(info.authMethods.contains(.safeCookie) && info.authMethods.contains(.cookie))
        #expect(info.cookieFile == tor.cookiePath)
        #expect(try await client.authenticate() == .safeCookie)

        let version = try await client.getInfo(["version"])["version"]
        #expect(version == info.torVersion)
        #expect(version?.first?.isNumber == true)
        #expect(try await client.bootstrapStatus().progress == 0, "DisableNetwork 1: tor never leaves the starting phase")
    }

    @Test func plainCookie() async throws {
        let tor = try await ControlTestTor(.socketWithCookie)
        defer { tor.stop() }
        let client = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await client.close() } }
        #expect(try await client.authenticate(method: .cookie) == .cookie)
        #expect(try await client.getInfo(["version"])["version"] != nil)
    }

    @Test func hashedPassword() async throws {
        let password = #"correct "horse" \ battery"#
        let tor = try await ControlTestTor(.portWithPassword(password))
        defer { tor.stop() }

        let client = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await client.close() } }
        #expect(try await client.authenticate(password: password) == .hashedPassword)
        #expect(try await client.getInfo(["version"])["version"] != nil)

        let wrong = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await wrong.close() } }
        let error = await #expect(throws: TorControlError.self) { try await wrong.authenticate(password: "wrong") }
        guard case .authenticationFailed(let method, let message)? = error else {
            Issue.record("expected authenticationFailed, got \(String(describing: error))"); return
        }
        #expect(method == "HASHEDPASSWORD")
        #expect(message.contains("Password did not match"), "tor's own words: \(message)")
        #expect(error?.description.contains("tor --hash-password") == true)
        // Tor closes the connection after a failed AUTHENTICATE.
        await wrong.waitUntilClosed()

        let none = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await none.close() } }
        await #expect(throws: TorControlError.passwordRequired) { try await none.authenticate() }
    }

    @Test func noAuthentication() async throws {
        let tor = try await ControlTestTor(.portWithoutAuth)
        defer { tor.stop() }
        let client = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await client.close() } }
        #expect(try await client.protocolInfo().authMethods == [.null])
        #expect(try await client.authenticate(password: "ignored") == .null)
        #expect(try await client.getInfo(["version"])["version"] != nil)
    }

    @Test func cookieProblemsHaveClearErrors() async throws {
        let tor = try await ControlTestTor(.socketWithCookie)
        defer { tor.stop() }

        // Unreadable: the path, errno's words and what to do.
        let missing = tor.scratch.path + "/no-such-cookie"
        let a = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await a.close() } }
        let error = await #expect(throws: TorControlError.cookieUnreadable(path: missing, reason: "No such file or directory")) {
            try await a.authenticate(cookiePath: missing)
        }
        #expect(error?.description.contains("debian-tor") == true)
        #expect(error?.description.contains("CookieAuthFileGroupReadable") == true)

        // Another tor's cookie: tor's SAFECOOKIE proof does not match, and we never answer it.
        let foreign = tor.scratch.path + "/foreign-cookie"
        try Data(Sodium.randomBytes(32)).write(to: URL(fileURLWithPath: foreign))
        let b = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await b.close() } }
        await #expect(throws: TorControlError.serverHashMismatch(cookiePath: foreign)) {
            try await b.authenticate(cookiePath: foreign)
        }

        // Not a cookie at all.
        let short = tor.scratch.path + "/short-cookie"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        let c = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await c.close() } }
        await #expect(throws: TorControlError.badCookieLength(path: short, length: 3)) {
            try await c.authenticate(cookiePath: short, method: .cookie)
        }

        // A wrong cookie sent as COOKIE: tor refuses it.
        let d = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await d.close() } }
        let refused = await #expect(throws: TorControlError.self) { try await d.authenticate(cookiePath: foreign, method: .cookie) }
        guard case .authenticationFailed(method: "COOKIE", _)? = refused else {
            Issue.record("expected authenticationFailed, got \(String(describing: refused))"); return
        }

        // Unauthenticated commands are refused with tor's 514.
        let e = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await e.close() } }
        await #expect(throws: TorControlError.rejected(command: "GETINFO", code: 514, message: "Authentication required.")) {
            try await e.getInfo(["version"])
        }
    }

    @Test func unreachableEndpoint() async throws {
        let scratch = Scratch("tc")
        let error = await #expect(throws: TorControlError.self) {
            try await TorControlClient.connect(.unix(scratch.path + "/nothing"), group: Self.group)
        }
        guard case .connectFailed(let endpoint, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(endpoint == scratch.path + "/nothing")
        await #expect(throws: TorControlError.self) {
            try await TorControlClient.connect(.unix("relative/control"), group: Self.group)
        }
    }

    // MARK: Onion services

    @Test func addOnionServesOurAddressAndDelOnionRemovesIt() async throws {
        let tor = try await ControlTestTor(.socketWithCookie)
        defer { tor.stop() }
        let client = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await client.close() } }
        try await client.authenticate()

        let key = OnionKey.generate()
        let serviceID = try await client.addOnion(key: key, ports: [
            TorOnionPort(virtualPort: 80, target: .unix(tor.scratch.path + "/p2p.sock")),
            TorOnionPort(virtualPort: 81, target: .tcp(host: "127.0.0.1", port: 9)),
        ])
        #expect(serviceID + ".onion" == key.onionAddress)
        #expect(serviceID.count == 56)
        #expect(try await currentOnions(client) == [serviceID])

        // The same key again on the same connection: tor's 550, with what to do.
        let error = await #expect(throws: TorControlError.self) {
            try await client.addOnion(key: key, ports: [TorOnionPort(virtualPort: 80)])
        }
        guard case .rejected(command: "ADD_ONION", code: 550, let message)? = error else {
            Issue.record("expected a 550, got \(String(describing: error))"); return
        }
        #expect(message == "Onion address collision")
        #expect(error?.description.contains("already running") == true)

        try await client.delOnion(serviceID)
        #expect(try await currentOnions(client) == [])
        await #expect(throws: TorControlError.rejected(command: "DEL_ONION", code: 552, message: "Unknown Onion Service id")) {
            try await client.delOnion(key.onionAddress)
        }

        // Detached services are listed apart and outlive the connection.
        let detachedKey = OnionKey.generate()
        let detached = try await client.addOnion(key: detachedKey, ports: [TorOnionPort(virtualPort: 80)], detach: true)
        #expect(try await client.getInfo(["onions/detached"])["onions/detached"] == detached)
        await client.close()
        let again = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await again.close() } }
        try await again.authenticate()
        #expect(try await again.getInfo(["onions/detached"])["onions/detached"] == detached)
        try await again.delOnion(detached)
    }

    @Test func onionsOfAClosedConnectionAreGone() async throws {
        let tor = try await ControlTestTor(.socketWithCookie)
        defer { tor.stop() }
        let key = OnionKey.generate()
        let first = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        try await first.authenticate()
        try await first.addOnion(key: key, ports: [TorOnionPort(virtualPort: 80)])
        await first.close()

        // A supervisor's reconnect: the same key is free again and gives the same address.
        let second = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await second.close() } }
        try await second.authenticate()
        #expect(try await second.addOnion(key: key, ports: [TorOnionPort(virtualPort: 80)]) + ".onion" == key.onionAddress)
    }

    // MARK: Events, pipelining, lifetime

    @Test func eventsArriveOnTheStream() async throws {
        let tor = try await ControlTestTor(.socketWithCookie)
        defer { tor.stop() }
        let client = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await client.close() } }
        try await client.authenticate()

        try await client.setEvents(["HS_DESC", "STATUS_CLIENT", "CONF_CHANGED"])
        try await client.setConf([("MaxCircuitDirtiness", "700")])
        // A multi-line 650 event; the reply to GETINFO right after it is matched correctly too.
        #expect(try await client.getInfo(["version"])["version"] != nil)
        let event = try await withTimeout(10) { () -> TorAsyncEvent? in
            for await event in client.events where event.keyword == "CONF_CHANGED" { return event }
            return nil
        }
        guard case .other(_, let reply)? = event else { Issue.record("no CONF_CHANGED event: \(String(describing: event))"); return }
        #expect(reply.lines.contains { $0.text == "MaxCircuitDirtiness=700" })
        #expect(try await client.getConf(["MaxCircuitDirtiness"]).first?.value == "700")
        try await client.resetConf(["MaxCircuitDirtiness"])

        await #expect(throws: TorControlError.rejected(command: "SETEVENTS", code: 552, message: "Unrecognized event \"NO_SUCH_EVENT\"")) {
            try await client.setEvents(["NO_SUCH_EVENT"])
        }
        try await client.setEvents([])
        try await client.signal(.heartbeat)
    }

    @Test func pipelinedCommandsGetTheirOwnReplies() async throws {
        let tor = try await ControlTestTor(.socketWithCookie)
        defer { tor.stop() }
        let client = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        defer { Task { await client.close() } }
        try await client.authenticate()

        let keys = ["version", "process/pid", "onions/current", "status/bootstrap-phase", "config-text", "net/listeners/control"]
        let results = try await withThrowingTaskGroup(of: (String, [String: String]).self) { group in
            for i in 0..<60 {
                let key = keys[i % keys.count]
                group.addTask { (key, try await client.getInfo([key])) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 60)
        for (key, values) in results { #expect(Array(values.keys) == [key]) }
        #expect(results.first { $0.0 == "process/pid" }?.1["process/pid"] == String(tor.pid))
        #expect(results.first { $0.0 == "config-text" }?.1["config-text"]?.contains("DisableNetwork 1") == true)
    }

    @Test func closedWhenTorExits() async throws {
        let tor = try await ControlTestTor(.socketWithCookie)
        defer { tor.stop() }
        let client = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        try await client.authenticate()
        try await client.setEvents(["STATUS_CLIENT"])
        #expect(client.isOpen)

        tor.stop()
        let closed = try await withTimeout(10) { await client.waitUntilClosed(); return true }
        #expect(closed == true)
        #expect(!client.isOpen)
        await #expect(throws: TorControlError.connectionClosed) { try await client.getInfo(["version"]) }
        // The event stream ends with the connection.
        let ended = try await withTimeout(10) { for await _ in client.events {}; return true }
        #expect(ended == true)
    }

    @Test func takeOwnershipStopsTorWithTheConnection() async throws {
        let tor = try await ControlTestTor(.socketWithCookie)
        defer { tor.stop() }
        let client = try await TorControlClient.connect(tor.endpoint, group: Self.group)
        try await client.authenticate()
        try await client.takeOwnership()
        try await client.resetConf(["__OwningControllerProcess"])
        await client.close()
        let exited = try await withTimeout(15) {
            while !tor.hasExited { try await Task.sleep(nanoseconds: 50_000_000) }
            return true
        }
        #expect(exited == true)
    }

    /// The choice `authenticate` makes, without a tor.
    @Test func methodPreference() throws {
        let all: [TorAuthMethod] = [.null, .hashedPassword, .cookie, .safeCookie]
        #expect(try TorControlClient.bestMethod(offered: all, havePassword: true, cookieReadable: { true }) == .safeCookie)
        #expect(try TorControlClient.bestMethod(offered: [.cookie, .hashedPassword], havePassword: true, cookieReadable: { true }) == .cookie)
        // An unreadable cookie gives way to a password, or else is tried so the error names the file.
        #expect(try TorControlClient.bestMethod(offered: [.cookie, .safeCookie, .hashedPassword], havePassword: true,
                                                cookieReadable: { false }) == .hashedPassword)
        #expect(try TorControlClient.bestMethod(offered: [.cookie, .safeCookie, .hashedPassword], havePassword: false,
                                                cookieReadable: { false }) == .safeCookie)
        #expect(try TorControlClient.bestMethod(offered: [.hashedPassword, .null], havePassword: false, cookieReadable: { false }) == .null)
        #expect(try TorControlClient.bestMethod(offered: [.null], havePassword: true, cookieReadable: { false }) == .null)
        #expect(throws: TorControlError.passwordRequired) {
            try TorControlClient.bestMethod(offered: [.hashedPassword], havePassword: false, cookieReadable: { false })
        }
        #expect(throws: TorControlError.noUsableAuthMethod(offered: ["FUTURE"])) {
            try TorControlClient.bestMethod(offered: [.other("FUTURE")], havePassword: true, cookieReadable: { true })
        }
    }

    private func currentOnions(_ client: TorControlClient) async throws -> [String] {
        let text = try await client.getInfo(["onions/current"])["onions/current"] ?? ""
        return text.split(separator: "\n").map(String.init)
    }
}

// MARK: - A tor child for control tests

/// A tor with its own short scratch dir (unix socket paths must stay under 108 bytes, and tor
/// wants the socket's directory 0700), started with AnnexdKit's ChildProcess.
private final class ControlTestTor: @unchecked Sendable {
    enum Control {
        case socketWithCookie
        case portWithPassword(String)
        case portWithoutAuth
    }

    static let binary = "/usr/bin/tor"
    let scratch: Scratch
    private let child: ChildProcess
    private let stopped = NSLock()
    private var isStopped = false
    private(set) var endpoint: TorControlEndpoint = .unix("/nonexistent")
    var dataDir: String { scratch.path + "/d" }
    var cookiePath: String { dataDir + "/control_auth_cookie" }
    var logPath: String { scratch.path + "/log" }
    var pid: Int32 { child.pid }

    convenience init(_ control: Control, timeout: TimeInterval = 20) async throws {
        let scratch = Scratch("tc")
        guard mkdir(scratch.path + "/d", 0o700) == 0 else { throw TorTestError("mkdir: errno \(errno)") }
        _ = chmod(scratch.path, 0o700)
        let socketPath = scratch.path + "/c", portFile = scratch.path + "/port"
        var config = [
            "SocksPort 0",
            "DisableNetwork 1",
            "DataDirectory \(scratch.path)/d",
            "Log notice file \(scratch.path)/log",
            "__OwningControllerProcess \(getpid())",
        ]
        switch control {
        case .socketWithCookie:
            config += ["ControlSocket \(socketPath)", "CookieAuthentication 1"]
        case .portWithPassword(let password):
            let hash = try Command.output([Self.binary, "--hash-password", password, "--quiet"])
                .split(separator: "\n").last { $0.hasPrefix("16:") }
            guard let hash else { throw TorTestError("tor --hash-password gave no hash") }
            config += ["ControlPort auto", "ControlPortWriteToFile \(portFile)", "HashedControlPassword \(hash)"]
        case .portWithoutAuth:
            config += ["ControlPort auto", "ControlPortWriteToFile \(portFile)"]
        }
        let torrc = scratch.path + "/torrc", defaults = scratch.path + "/defaults"
        try (config.joined(separator: "\n") + "\n").write(toFile: torrc, atomically: true, encoding: .utf8)
        try "".write(toFile: defaults, atomically: true, encoding: .utf8)
        self.init(scratch: scratch, child: try ChildProcess([Self.binary, "--defaults-torrc", defaults, "-f", torrc, "--quiet"],
                                                            quietStderr: true))
        do {
            switch control {
            case .socketWithCookie:
                let cookie = cookiePath
                try await waitFor("control socket \(socketPath) and cookie", timeout: timeout) {
                    Self.isSocket(socketPath) && Posix.fileSize(cookie) == 32
                }
                endpoint = .unix(socketPath)
            case .portWithPassword, .portWithoutAuth:
                var address = ""
                try await waitFor("control port file \(portFile)", timeout: timeout) {
                    // "PORT=127.0.0.1:NNNNN\n", complete once the newline is there.
                    guard let text = try? String(contentsOfFile: portFile, encoding: .utf8), text.hasSuffix("\n"),
                          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("PORT=") }) else { return false }
                    address = String(line.dropFirst(5))
                    return true
                }
                guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
                    throw TorTestError("unexpected ControlPortWriteToFile content: \(address)")
                }
                endpoint = .tcp(host: String(address[..<colon]), port: port)
            }
        } catch {
            stop()
            throw error
        }
    }

    private init(scratch: Scratch, child: ChildProcess) {
        self.scratch = scratch
        self.child = child
        child.closeStdin()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log)" }

    /// True once tor has exited (a zombie not yet reaped counts).
    var hasExited: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(child.pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    private func waitFor(_ what: String, timeout: TimeInterval, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if hasExited { throw TorTestError("tor exited before \(what) appeared:\n\(log)") }
            if Date() > deadline { throw TorTestError("no \(what) after \(Int(timeout)) s:\n\(log)") }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// SIGKILL and reap; safe to call more than once.
    func stop() {
        let first = stopped.withLock { () -> Bool in
            defer { isStopped = true }
            return !isStopped
        }
        guard first else { return }
        kill(child.pid, SIGKILL)
        child.wait()
    }

    deinit { stop() }

    private static func isSocket(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK
    }
}

private struct TorTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `body`'s result, or a failure after `seconds`.
private func withTimeout<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            throw TorTestError("timed out after \(seconds) s")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
