import Shared

/// The P2P line codec and the server machine, before and after AUTH.
enum P2PFuzz {
    /// Every line (framed by the real LineBuffer) that parses must serialize to a line that
    /// parses to the same message, without a newline and not much longer than the input.
    @Sendable static func codec(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        var buffer = LineBuffer()
        buffer.append(input)
        buffer.append([10])
        while true {
            let line: String?
            do { line = try buffer.nextLine() } catch { return }
            guard let line else { return }
            guard let message = try? P2PMessage.parse(line) else { continue }
            let wire = message.wireLine
            try require(!wire.utf8.contains(10), "\(message.command) serializes with a newline")
            try require(wire.utf8.count <= line.utf8.count + 24, "\(message.command) serializes much longer than its line")
            let again: P2PMessage
            do { again = try P2PMessage.parse(wire) } catch {
                throw FuzzViolation("\"\(KeyError.printable(wire))\" from \"\(KeyError.printable(line))\" does not parse: \(error)")
            }
            try require(again == message && Array(again.wireLine.utf8) == Array(wire.utf8),
                        "parse(serialize(m)) != m for \"\(KeyError.printable(line))\"")
        }
    }

    static let serverUUID = "11111111-1111-4111-8111-111111111111"
    static let clientUUID = "22222222-2222-4222-8222-222222222222"
    /// The one token the fuzzed server accepts (through the real P2PAuthFile).
    public static let validToken = String(repeating: "0123456789abcdef", count: 8)

    /// Input: one byte of shell choices (see `FakeServerShell`), then the client's byte stream.
    @Sendable static func serverBeforeAuth(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        guard let choices = input.first else { return }
        var shell = FakeServerShell(choices: choices, preamble: [])
        try shell.run(UnsafeRawBufferPointer(rebasing: input.dropFirst()))
    }

    /// As `serverBeforeAuth`, but the client first authenticates with the valid token.
    @Sendable static func serverAfterAuth(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        guard let choices = input.first else { return }
        var shell = FakeServerShell(choices: choices, preamble: Array("AUTH \(clientUUID) \(validToken)\n".utf8))
        try shell.run(UnsafeRawBufferPointer(rebasing: input.dropFirst()))
    }
}

/// Drives P2PServerMachine as P2PServerSession does, with the repository faked: local
/// requests are answered at once, each answer picked by the next bit of `choices`
/// (present or not, lock taken or not, a partial kept or not, ...). AUTH is checked by
/// the real P2PAuthFile against `P2PFuzz.validToken`.
struct FakeServerShell {
    let choices: UInt8
    var machine: P2PServerMachine
    var input = LineBuffer()
    var answered = 0
    var lines = 0
    var sends = 0
    /// `DATA n` the machine announced for the content it is about to stream.
    var announced: Int64?
    let authFile = P2PAuthFile(text: P2PFuzz.validToken + " tor-annex::fuzz.onion:5000\n")

    init(choices: UInt8, preamble: [UInt8]) {
        self.choices = choices
        // Bit 7: a read-only server.
        machine = P2PServerMachine(config: .init(serverUUID: P2PFuzz.serverUUID, readOnly: choices & 0x80 != 0))
        input.append(preamble)
    }

    mutating func bit() -> Bool {
        defer { answered += 1 }
        return choices & (1 << UInt8(answered % 7)) != 0
    }

    mutating func run(_ stream: UnsafeRawBufferPointer) throws(FuzzViolation) {
        input.append(stream)
        try perform(machine.start())
        while !machine.isClosed {
            let line: String?
            do { line = try input.nextLine() } catch {
                try perform(machine.receiveUnreadable(error.description))
                break
            }
            guard let line else { break }
            lines += 1
            let wasAuthenticated = machine.isAuthenticated
            do { try perform(machine.receive(try P2PMessage.parse(line))) } catch let error as P2PParseError {
                try perform(machine.receiveUnparseable(error))
            } catch let error as FuzzViolation { throw error } catch { throw FuzzViolation("unexpected \(error)") }
            if !wasAuthenticated && machine.isAuthenticated {
                try require(line.hasPrefix("AUTH ") && authFile.accepts(String(line.split(separator: " ").last ?? "")) != nil,
                            "authenticated by \"\(KeyError.printable(line))\"")
            }
            try require(sends <= 4 * (lines + 1), "\(sends) messages sent for \(lines) lines")
        }
        // After the session ends nothing more happens.
        if machine.isClosed {
            try require(machine.receive(.notifyChange).isEmpty, "a closed machine acted")
        }
    }

    mutating func perform(_ actions: [P2PServerMachine.Action]) throws(FuzzViolation) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .send(let message):
                sends += 1
                let wire = message.wireLine
                try require((try? P2PMessage.parse(wire)) == message, "the server sent \"\(KeyError.printable(wire))\", which does not parse back")
                if !machine.isAuthenticated {
                    switch message {
                    case .authSuccess, .authFailure, .error: break
                    default: throw FuzzViolation("\(message.command) sent before authentication")
                    }
                }
                if case .data(let n) = message { announced = n }
            case .close, .effect:
                break
            case .local(let request):
                queue.append(contentsOf: machine.complete(try answer(request)))
            }
        }
    }

    mutating func answer(_ request: P2PServerMachine.LocalRequest) throws(FuzzViolation) -> P2PServerMachine.LocalResult {
        if case .checkAuth(_, let token) = request {
            return .authenticated(authFile.accepts(token) != nil)
        }
        try require(machine.isAuthenticated, "local request \(request) before authentication")
        if machine.readOnly {
            switch request {
            case .remove, .preparePut, .receiveData, .storeReceived: throw FuzzViolation("\(request) on a read-only server")
            case .connect(let service) where service != "git-upload-pack": throw FuzzViolation("\(request) on a read-only server")
            default: break
            }
        }
        switch request {
        case .checkAuth: preconditionFailure("answered above")
        case .checkPresent: return .present(bit())
        case .lockContent: return .locked(bit())
        case .remove: return bit() ? .done(bit()) : .refused("fuzz: refused")
        case .getTimestamp: return .timestamp(1_700_000_000)
        case .preparePut(let key):
            if bit() { return .refused("fuzz: not wanted") }
            return .putCandidate(present: bit(), partialSize: bit() ? (key.size ?? 3) + 1 : 3)
        case .receiveData(_, let offset, let length):
            try require(offset >= 0 && length >= 0, "receiveData at \(offset) of \(length)")
            let got = input.takeBytes(max: Int(clamping: length)) { $0.count }
            return .received(complete: Int64(got) == length)
        case .storeReceived: return .stored(bit())
        case .openContent(let key, _):
            return bit() ? .contentOpened(size: key.size ?? 6) : .contentAbsent
        case .streamContent(_, let offset, let length):
            try require(offset >= 0 && length >= 0 && announced == length, "streaming \(length) at \(offset) after DATA \(announced ?? -1)")
            return .contentStreamed(complete: bit(), unchanged: bit())
        case .waitForChange: return .changed(["refs/heads/main"])
        case .connect: return .serviceFinished(exitCode: bit() ? 0 : 128)
        }
    }
}
