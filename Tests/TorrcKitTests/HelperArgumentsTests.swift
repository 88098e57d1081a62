import Testing
@testable import TorrcKit

/// annex-tor-helper's strict command line, without running it.
@Suite struct HelperArgumentsTests {
    static let uuid = "0e2c4f4a-1d7e-4b4a-9d3c-2f1e0a9b8c7d"

    func options(_ args: [String]) throws -> HelperOptions {
        guard case .run(let o) = try HelperInvocation.parse(args) else { throw HelperFailure(.usage, "help") }
        return o
    }

    func reason(_ args: [String]) -> HelperReason? {
        do { _ = try HelperInvocation.parse(args); return nil } catch { return error.reason }
    }

    @Test func addParsesEveryFlag() throws {
        let o = try options(["add-hidden-service", "--uid", "1000", "--repo-uuid", Self.uuid, "--port", "65535",
                             "--torrc", "/tmp/t/torrc", "--tor-data-root", "/tmp/t/data", "--socket-root", "/tmp/t/s",
                             "--reload-command", "kill -HUP 42", "--timeout", "5", "--defaults-torrc", "/tmp/t/empty"])
        #expect(o.command == .addHiddenService && o.uid == 1000 && o.repoUUID == Self.uuid && o.port == 65535)
        #expect(o.reloadCommand == ["kill", "-HUP", "42"] && o.timeout == 5)
        let layout = try #require(o.layout)
        #expect(layout.hiddenServiceDir == "/tmp/t/data/tor-annex_1000_\(Self.uuid)")
        #expect(layout.socketFile == "/tmp/t/s/1000_\(Self.uuid)/s")
    }

    @Test func defaultsAreGitAnnexLayout() throws {
        let o = try options(["add-hidden-service", "--uid", "1000", "--repo-uuid", Self.uuid])
        let layout = try #require(o.layout)
        #expect(layout.hiddenServiceDir == "/var/lib/tor/tor-annex_1000_\(Self.uuid)")
        #expect(layout.socketFile == "/var/lib/tor-annex/1000_\(Self.uuid)/s")
        #expect(o.port == nil && o.torrc == nil && o.reloadCommand == nil && o.timeout == 120)
        let c = try options(["enable-control-socket", "--group", "debian-tor"])
        #expect(c.controlSocket == "/run/tor/control" && c.cookieFile == "/run/tor/control.authcookie")
    }

    @Test func helpAndUsage() {
        #expect((try? HelperInvocation.parse(["--help"])) == .help)
        #expect(reason([]) == .usage)
        #expect(reason(["frobnicate"]) == .usage)
        #expect(HelperInvocation.usageText.contains("10  rolling back failed"))
    }

    static let base = ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid]

    @Test(arguments: [
        ["--unknown", "x"], ["--uid", "1000"], ["--port"], ["--port=80"], ["--group", "g"], ["-u", "1"],
    ]) func usageErrors(_ extra: [String]) {
        #expect(reason(Self.base + extra) == .usage)
    }

    @Test func missingRequiredFlagsAndWrongCommandFlags() {
        #expect(reason(["add-hidden-service", "--uid", "1000"]) == .usage)
        #expect(reason(["remove-hidden-service", "--uid", "1000", "--repo-uuid", Self.uuid, "--port", "80"]) == .usage)
        #expect(reason(["enable-control-socket"]) == .usage)
    }

    @Test(arguments: [
        "abc", "-1", "+5", "01000", "1000 ", " 1000", "00", "4294967295", "99999999999", "1e3", "", "１２",
    ]) func badUIDs(_ uid: String) {
        #expect(reason(["add-hidden-service", "--uid", uid, "--repo-uuid", Self.uuid]) == .invalidArgument)
    }

    @Test(arguments: [
        "0e2c4f4a-1d7e-4b4a-9d3c-2f1e0a9b8c7d\n", "0e2c4f4a-1d7e-4b4a-9d3c 2f1e0a9b8c7d", "0e2c4f4a/1d7e-4b4a-9d3c-2f1e0a9b8c7d",
        "../../../../etc/passwd", "0E2C4F4A-1D7E-4B4A-9D3C-2F1E0A9B8C7D", "0e2c4f4a-1d7e-4b4a-9d3c-2f1e0a9b8c7", "", "..",
        "0e2c4f4a-1d7e-4b4a-9d3c-2f1e0a9b8c7g", "0e2c4f4a-1d7e-4b4a-9d3c2-f1e0a9b8c7d",
    ]) func badUUIDs(_ uuid: String) {
        #expect(reason(["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid]) == .invalidArgument)
    }

    @Test(arguments: ["0", "65536", "-1", "080", "http", "", "99999999999999999999"]) func badPorts(_ port: String) {
        #expect(reason(Self.base + ["--port", port]) == .invalidArgument)
    }

    @Test(arguments: [
        ["--torrc", "etc/torrc"], ["--torrc", "/etc/tor/../torrc"], ["--torrc", "/etc//torrc"], ["--torrc", "/etc/tor/"],
        ["--torrc", "/etc/./torrc"], ["--tor-data-root", "var/lib/tor"], ["--socket-root", "/tmp/a b"],
        ["--socket-root", "/tmp/x#y"], ["--defaults-torrc", "/tmp/x\n"], ["--reload-command", ""],
        ["--reload-command", "kill  -HUP 1"], ["--reload-command", "kill -HUP 1\n"], ["--reload-command", "bin/kill -HUP 1"],
        ["--timeout", "0"], ["--timeout", "abc"],
        ["--socket-root", "/" + String(repeating: "x", count: 70)],   // socket path over 107 bytes
    ]) func badValues(_ extra: [String]) {
        #expect(reason(Self.base + extra) == .invalidArgument)
    }

    @Test(arguments: ["-wheel", "a b", "grp/x", "", String(repeating: "g", count: 33), "g\n"]) func badGroups(_ group: String) {
        #expect(reason(["enable-control-socket", "--group", group]) == .invalidArgument)
    }

    @Test func exitCodesAreDistinctPerKind() {
        let codes = HelperReason.allCases.filter { $0 != .usage }.map(\.exitCode)
        #expect(Set(codes).count == codes.count)
        #expect(HelperReason.usage.exitCode == 2 && HelperReason.invalidArgument.exitCode == 2)
    }
}
