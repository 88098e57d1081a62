import Foundation
import Testing
@testable import TorrcKit

/// The torrc model: byte-exact round trips, tor's line grouping, and the edits.
@Suite struct TorrcModelTests {
    static let samples: [String] = [
        "",
        "\n",
        "SocksPort 0",                                        // no final newline
        "# only a comment\n\n\n",
        "SocksPort 9050 # inline comment\r\nLog notice stdout\r\n",   // CRLF
        "  \tIndented   value  with   spaces  \n",
        "Nickname a\\\n  continued\\\n# comment inside a continuation\n  end\n",
        "ContactInfo \"quoted \\\"value\\\" here\"\n",
        "+HiddenServicePort 80 127.0.0.1:80\n/SocksPort\n",
        "%include /etc/tor/torrc.d/*.conf\n",
        "hiddenservicedir /x/\nHIDDENSERVICEPORT 1 unix:/y\n",
    ]

    @Test(arguments: samples) func renderIsByteIdentical(_ text: String) {
        #expect(Torrc(text: text).render() == Array(text.utf8))
    }

    @Test func invalidUTF8AndDebianTorrcRoundTrip() throws {
        let odd: [UInt8] = Array("# caf".utf8) + [0xE9, 0xFF, 0x0A] + Array("SocksPort 0\n".utf8)
        #expect(Torrc(bytes: odd).render() == odd)
        let debian = try #require(FileManager.default.contents(atPath: "/etc/tor/torrc"), "Debian's tor is installed here")
        #expect(Torrc(bytes: Array(debian)).render() == Array(debian))
    }

    @Test func debianTorrcHasOnlyCommentsAndBlanks() throws {
        let debian = try #require(FileManager.default.contents(atPath: "/etc/tor/torrc"))
        let model = Torrc(bytes: Array(debian))
        #expect(model.entries.allSatisfy { $0.kind == .blank || $0.kind == .comment })
        #expect(model.hiddenServices.isEmpty)
    }

    @Test func linesAreGroupedAsTorDoes() {
        let model = Torrc(text: "Nickname a\\\n  b\\\n# skipped\n  c\nSocksPort 9050 # note\nContactInfo \"x \\\"y\\\"\"\n")
        #expect(model.entries.count == 3)
        #expect(model.entries[0].kind == .option(key: "Nickname", value: "a  b  c"))
        #expect(model.entries[1].kind == .option(key: "SocksPort", value: "9050"))
        #expect(model.entries[2].kind == .option(key: "ContactInfo", value: "x \"y\""))
        let crlf = Torrc(text: "SocksPort 0\r\n")
        #expect(crlf.entries[0].value == "0")
    }

    // MARK: hidden services

    static let dir = "/var/lib/tor/tor-annex_1000_0e2c4f4a-1d7e-4b4a-9d3c-2f1e0a9b8c7d"
    static let port = HiddenServicePort(virtualPort: 4242, target: "unix:/var/lib/tor-annex/1000_0e2c4f4a-1d7e-4b4a-9d3c-2f1e0a9b8c7d/s")
    static let enableTorLines = "\nHiddenServiceDir \(dir)\nHiddenServicePort 4242 unix:/var/lib/tor-annex/1000_0e2c4f4a-1d7e-4b4a-9d3c-2f1e0a9b8c7d/s\n"

    @Test func addWritesEnableTorLinesThenRemoveRestoresBytes() throws {
        let original = "# mine\nSocksPort 0\n"
        var model = Torrc(text: original)
        #expect(model.addHiddenService(directory: Self.dir, ports: [Self.port]) == .changed)
        #expect(model.text == original + Self.enableTorLines)
        #expect(model.addHiddenService(directory: Self.dir, ports: [Self.port]) == .unchanged)
        #expect(model.text == original + Self.enableTorLines)
        let block = try #require(model.hiddenService(directory: Self.dir + "/"))
        #expect(block.ports == [Self.port])
        #expect(model.hiddenService(socket: "/var/lib/tor-annex/1000_0e2c4f4a-1d7e-4b4a-9d3c-2f1e0a9b8c7d/s") == block)
        #expect(model.usedHiddenServicePorts == [4242])
        #expect(model.removeHiddenService(directory: Self.dir) == .changed)
        #expect(model.text == original)
        #expect(model.removeHiddenService(directory: Self.dir) == .unchanged)
    }

    @Test func addToFileWithoutFinalNewlineEndsItsLastLine() {
        var model = Torrc(text: "SocksPort 0")
        model.addHiddenService(directory: Self.dir, ports: [Self.port])
        #expect(model.text == "SocksPort 0\n" + Self.enableTorLines)
    }

    @Test func removeTakesTheWholeBlockAndNothingElse() {
        let text = """
            SocksPort 0

            HiddenServiceDir /var/lib/tor/other
            HiddenServicePort 80 127.0.0.1:80

            hiddenservicedir \(Self.dir)/
            HiddenServiceVersion 3
            # a comment inside the block
            HiddenServicePort 4242 unix:/s
            # a comment after the block
            Log notice stdout

            """
        var model = Torrc(text: text)
        #expect(model.hiddenServices.map(\.directory) == ["/var/lib/tor/other", Self.dir + "/"])
        #expect(model.removeHiddenService(directory: Self.dir) == .changed)
        #expect(model.text == """
            SocksPort 0

            HiddenServiceDir /var/lib/tor/other
            HiddenServicePort 80 127.0.0.1:80
            # a comment after the block
            Log notice stdout

            """)
    }

    // MARK: control socket

    static let settings = ControlSocketSettings(socketPath: "/run/tor/control", cookieFile: "/run/tor/control.authcookie")

    @Test func controlSocketAddIsIdempotentAndRemovable() throws {
        let original = "SocksPort 0\n"
        var model = Torrc(text: original)
        #expect(try model.enableControlSocket(Self.settings) == .changed)
        #expect(model.text == original + """

            ControlSocket /run/tor/control GroupWritable RelaxDirModeCheck
            ControlSocketsGroupWritable 1
            CookieAuthentication 1
            CookieAuthFileGroupReadable 1
            CookieAuthFile /run/tor/control.authcookie

            """)
        #expect(try model.enableControlSocket(Self.settings) == .unchanged)
        #expect(model.removeControlSocket(path: "/run/tor/control") == .changed)
        #expect(model.text == original)
        #expect(model.removeControlSocket(path: "/run/tor/control") == .unchanged)
    }

    @Test func controlSocketAddsOnlyWhatIsMissing() throws {
        var model = Torrc(text: "ControlSocket unix:/run/tor/control\nCookieAuthentication 1\nCookieAuthFile /x/cookie\n")
        #expect(try model.enableControlSocket(Self.settings) == .changed)
        #expect(model.text.hasSuffix("\n\nControlSocketsGroupWritable 1\nCookieAuthFileGroupReadable 1\n"))
        #expect(model.cookieAuthFile == "/x/cookie")
    }

    @Test func controlSocketConflictIsNotOverridden() {
        var model = Torrc(text: "CookieAuthentication 0\n")
        #expect(throws: TorrcConflict.optionSetOtherwise(name: "CookieAuthentication", value: "0")) {
            try model.enableControlSocket(Self.settings)
        }
        #expect(model.text == "CookieAuthentication 0\n")
    }
}
