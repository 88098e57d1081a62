import Shared
import TranscriptSupport

// MARK: - Deliberate deviations of annexd's server from git-annex-shell

/// Where annexd's P2P server deliberately answers differently from the recorded
/// git-annex-shell. Each entry replaces a contiguous run of recorded server output
/// (in order: each entry is searched after the previous one of the same transcript);
/// a recorded line ending in `*` matches by prefix (TIMESTAMP values vary between recordings).
struct ServerDeviation: Sendable {
    enum Change: Sendable {
        case replace([Wire], with: [Wire])
        /// annexd serves a request git-annex-shell refused by exiting: after the client line
        /// `trigger`, annexd's first reply matches `firstReply`; the rest is not compared
        /// (it depends on the scratch repository's refs).
        case servedInstead(trigger: String, firstReply: Wire)
    }

    let transcript: String
    /// Server versions the entry is for (empty: both).
    let servers: Set<AnnexVersion>
    let change: Change
    let why: String

    func applies(to name: String, server: AnnexVersion) -> Bool {
        name == transcript && (servers.isEmpty || servers.contains(server))
    }
}

enum ServerDeviations {
    private static func on(_ transcript: String, _ servers: Set<AnnexVersion>, _ change: ServerDeviation.Change,
                           _ why: String) -> ServerDeviation {
        ServerDeviation(transcript: transcript, servers: servers, change: change, why: why)
    }

    private static func on(_ transcript: String, _ change: ServerDeviation.Change, _ why: String) -> ServerDeviation {
        ServerDeviation(transcript: transcript, servers: [], change: change, why: why)
    }

    static let tooLong = "ERROR protocol line longer than \(LineBuffer.maxLineLength) bytes"

    static let table: [ServerDeviation] = [
        // (i) Keys git-annex parses but annexd refuses. annexd's AnnexKey refuses any key that
        // could not be an object file name ('/', '..', NUL, whitespace, > 255 bytes); the
        // KeyError text says why, where git-annex treats the key as absent content.
        on("server-key-with-slash", .replace(["FAILURE"],
            with: [#"ERROR invalid key "SHA256E-s6--ab/cd.txt": contains '/'"#]),
           "(i) CHECKPRESENT of a key with '/': git-annex says FAILURE"),
        on("server-key-with-slash", .replace(["DATA 0", .payload(announced: 0, []), "INVALID",
                                              "ERROR expected SUCCESS or FAILURE"],
            with: [#"ERROR invalid key "SHA256E-s6--ab/cd.txt": contains '/'"#, "SUCCESS"]),
           "(i) GET of that key: git-annex sends absent content (DATA 0, INVALID) and then waits for "
           + "SUCCESS/FAILURE, refusing the next CHECKPRESENT; annexd refuses the GET and stays ready, "
           + "so the CHECKPRESENT is answered"),
        on("server-key-with-dotdot", .replace(["ERROR unknown command"],
            with: [#"ERROR invalid key "..": contains '..'"#]),
           "`CHECKPRESENT ..`: neither parses it; annexd's error says why (KeyError text), git-annex's is generic"),
        on("server-key-with-dotdot", .replace(["FAILURE"],
            with: [#"ERROR invalid key "SHA256E-s6--..%2F..%2Fetc": contains '..'"#]),
           "(i) a key with '..': git-annex says FAILURE (absent)"),
        on("server-key-with-dotdot", .replace(["ERROR unknown command"],
            with: [#"ERROR invalid key "../../../etc/passwd": contains '/'"#]),
           "`GET 0 x ../../../etc/passwd`: neither parses it; KeyError text instead of `unknown command`"),
        on("server-put-key-with-slash", .replace(["PUT-FROM 0", "FAILURE"],
            with: [#"ERROR invalid key "SHA256E-s4--../../evil": contains '/'"#,
                   "ERROR unexpected command", "ERROR unknown command", "ERROR unexpected command"]),
           "(i) PUT of a key with '/': git-annex takes the data and fails verification; annexd refuses the "
           + "PUT. The hand-written client goes on blindly: its `DATA 4` is then out of place (unexpected "
           + "command), the 4 payload bytes `new\\n` are read as the line `new` (unknown command), and VALID "
           + "is out of place"),
        on("server-line-32767", .replace(["ERROR unknown command"],
            with: [.line("ERROR invalid key \"" + String(repeating: "X", count: 80) + "…\": longer than 255 bytes")]),
           "a 32767-byte line is read by both; its 'key' does not parse: KeyError text (shown truncated) "
           + "instead of `unknown command`"),

        // (ii) INVALID after the DATA of a PUT: the sender says the content changed while it was
        // sent. annexd believes it and discards what arrived; git-annex re-verified the bytes
        // itself and stored them (SUCCESS, and CHECKPRESENT then says SUCCESS).
        on("server-put-invalid-v1", .replace(["PUT-FROM 0", "SUCCESS", "SUCCESS"],
                                             with: ["PUT-FROM 0", "FAILURE", "FAILURE"]),
           "(ii) INVALID after DATA: annexd discards (FAILURE), so the key stays absent (FAILURE)"),

        // (iii) A line of 32768 bytes or more: git-annex-shell exits without a word on the
        // protocol stream; annexd tells the client why before closing (FDConnection refuses
        // the line, P2PServerMachine.receiveUnreadable answers).
        on("server-line-32768", .replace(["VERSION 1"], with: ["VERSION 1", .line(tooLong)]), "(iii)"),
        on("server-line-32769", .replace(["VERSION 1"], with: ["VERSION 1", .line(tooLong)]), "(iii)"),
        on("server-long-line", .replace(["VERSION 1"], with: ["VERSION 1", .line(tooLong)]), "(iii) 40013 bytes"),

        // Malformed numbers: P2PParseError.malformed names the field; git-annex says `unknown command`.
        on("server-malformed-get-offset", .replace(["ERROR unknown command"],
            with: [#"ERROR GET: "x" is not a number"#]),
           "malformed number: P2PParseError.malformed text instead of `unknown command`"),
        // CONNECT to a service that is not a git service: git-annex cannot parse the message
        // (`unknown command`); annexd parses CONNECT with any service name and refuses it by name,
        // which tells the user what was refused. Judged deliberately better, not a bug: any ERROR
        // makes a git-annex client give up the same way.
        on("server-connect-bogus-service", .replace(["ERROR unknown command"],
            with: ["ERROR unsupported service git-frobnicate"]),
           "CONNECT of an unknown service: refused by name"),

        // (iv) Version gating: GETTIMESTAMP and REMOVE-BEFORE came with protocol v3, BYPASS with v2.
        // annexd answers them below that version with `unexpected command`. 10.20230126 (max v1)
        // did not know them at all (`unknown command`); 10.20261026 accepted them at any version.
        on("server-gettimestamp-v1", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]), "(iv)"),
        on("server-gettimestamp-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) VERSION 4 was answered VERSION 1"),
        on("server-gettimestamp-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) the second GETTIMESTAMP"),
        on("server-remove-before-v1", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]), "(iv)"),
        on("server-remove-before-past-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) VERSION 4 was answered VERSION 1"),
        on("server-remove-before-absent-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) GETTIMESTAMP at v1"),
        on("server-remove-before-absent-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) REMOVE-BEFORE at v1"),
        on("server-bypass-v1", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]), "(iv)"),
        on("server-bypass-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) VERSION 4 was answered VERSION 1"),
        on("server-gettimestamp-v1", [.pypi], .replace(["TIMESTAMP *"], with: ["ERROR unexpected command"]),
           "(iv) 10.20261026 answers GETTIMESTAMP at v1"),
        on("server-remove-before-v1", [.pypi], .replace(["SUCCESS"], with: ["ERROR unexpected command"]),
           "(iv) 10.20261026 serves REMOVE-BEFORE at v1"),
        on("server-bypass-v1", [.pypi], .replace(["VERSION 1", "SUCCESS"],
                                                  with: ["VERSION 1", "ERROR unexpected command", "SUCCESS"]),
           "(iv) 10.20261026 accepts BYPASS silently at v1"),

        // (v) NOTIFYCHANGE and CONNECT over p2pstdio: git-annex-shell fails (exit 1, nothing on the
        // protocol stream); annexd supports both.
        on("server-notifychange-v1", .servedInstead(trigger: "NOTIFYCHANGE", firstReply: "CHANGED*"), "(v)"),
        on("server-connect-upload-pack", .servedInstead(trigger: "CONNECT git-upload-pack", firstReply: "DATA *"),
           "(v) 10.20230126 relayed git-upload-pack, 10.20261026 refused it"),
    ]
}

