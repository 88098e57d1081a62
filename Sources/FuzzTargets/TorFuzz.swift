import Shared
import TorrcKit

/// tor's control-port replies, the torrc model and its edits, and the privileged helper's
/// argument parser.
enum TorFuzz {
    /// Replies must not depend on how the bytes were chunked; every parsed reply goes
    /// through the typed reply and event parsers.
    @Sendable static func controlReplies(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        func parser() -> TorControlReplyParser { TorControlReplyParser(maxLineBytes: 4096, maxReplyBytes: 64 * 1024) }
        var whole = parser()
        let all: Result<[TorControlReply], TorControlError> = Result { () throws(TorControlError) in try whole.feed(input) }
        var split = parser()
        var pieces: [TorControlReply] = []
        var splitError: TorControlError?
        // Chunk sizes 1, 2, 3, ... so line ends fall anywhere in a chunk.
        var offset = 0, size = 1
        while offset < input.count {
            let chunk = UnsafeRawBufferPointer(rebasing: input[offset..<min(input.count, offset + size)])
            do { pieces += try split.feed(chunk) } catch { splitError = error; break }
            offset += size
            size = size % 7 + 1
        }
        switch all {
        case .success(let replies):
            try require(splitError == nil && replies == pieces, "replies depend on chunking")
            for reply in replies {
                try require(!reply.lines.isEmpty, "a reply without lines")
                try typedParsers(reply)
            }
        case .failure(let error):
            try require(splitError == error, "chunked feed gave \(String(describing: splitError)), whole feed \(error)")
        }
    }

    static func typedParsers(_ reply: TorControlReply) throws(FuzzViolation) {
        _ = TorAsyncEvent(reply: reply)
        _ = try? TorProtocolInfo(reply: reply)
        if let challenge = try? TorAuthChallenge(reply: reply) {
            try require(challenge.serverHash.count == 32 && challenge.serverNonce.count == 32, "AUTHCHALLENGE sizes")
        }
        _ = try? TorAddOnionReply(reply: reply)
        _ = try? TorKeyValueReply.getInfo(reply)
        _ = try? TorKeyValueReply.getConf(reply)
        for line in reply.lines {
            _ = try? TorHSDescEvent(line: line.text)
            _ = try? TorBootstrapStatus(statusLine: line.text)
        }
    }

    static let directory = "/var/lib/tor/tor-annex_fuzz"
    static let socket = "/run/tor-annex-fuzz/control"

    /// The model keeps every byte; adding then removing a hidden service or the control
    /// socket lines gives back the same bytes; what was added is found after a re-parse.
    @Sendable static func torrc(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        let bytes = Array(input)
        let torrc = Torrc(bytes: bytes)
        try require(torrc.render() == bytes, "render() of an unmodified torrc differs from its input")

        if torrc.hiddenService(directory: directory) == nil {
            var edited = torrc
            let port = HiddenServicePort(virtualPort: 5000, target: "unix:/var/lib/tor-annex/fuzz/s")
            try require(edited.addHiddenService(directory: directory, ports: [port]) == .changed, "adding a hidden service changed nothing")
            let reparsed = Torrc(bytes: edited.render())
            try require(reparsed.hiddenService(directory: directory)?.ports == [port], "the added hidden service is not found again")
            try require(edited.removeHiddenService(directory: directory) == .changed, "removing the added hidden service changed nothing")
            // Appending ends an unterminated last line first; nothing else may change.
            let expected = bytes.isEmpty || bytes.last == 0x0A ? bytes : bytes + [0x0A]
            try require(edited.render() == expected, "adding then removing a hidden service changed other bytes")
        }
        if torrc.controlSocketIndex(path: socket) == nil {
            var edited = torrc
            let settings = ControlSocketSettings(socketPath: socket, cookieFile: "/run/tor-annex-fuzz/control.authcookie")
            if (try? edited.enableControlSocket(settings)) != nil {
                let reparsed = Torrc(bytes: edited.render())
                try require(reparsed.controlSocketIndex(path: socket) != nil, "the added control socket is not found again")
                for flag in ControlSocketSettings.flags {
                    try require(reparsed.lastValue(of: flag) == "1", "\(flag) is not 1 after enabling the control socket")
                }
            }
        }
    }

    /// Arguments split at NUL bytes. Whatever is accepted must be safe to write into a torrc
    /// and to use as paths: absolute, normalized, no whitespace or control characters.
    @Sendable static func helperArguments(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        let args = input.pieces(separator: 0, limit: 64).map { String(decoding: $0, as: UTF8.self) }
        guard case .run(let options)? = try? HelperInvocation.parse(args) else { return }
        var paths = [options.controlSocket, options.torDataRoot, options.socketRoot, options.cookieFile]
        paths += [options.torrc, options.defaultsTorrc].compactMap { $0 }
        if let layout = options.layout {
            paths += [layout.hiddenServiceDir, layout.socketDir, layout.socketFile, layout.hostnameFile]
            try require(layout.socketFile.utf8.count <= HelperValidation.maxSocketPathBytes, "socket path too long")
        }
        for path in paths {
            try require(path.hasPrefix("/") && !path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
                            .contains { $0 == ".." || $0 == "." }, "accepted path \(path)")
            try require(!path.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7f || $0 == "#" || $0 == "\"" || $0 == "\\" },
                        "accepted path with a special character: \(path.debugDescription)")
        }
        if let port = options.port { try require((1...65535).contains(port), "port \(port)") }
        try require((1...3600).contains(options.timeout), "timeout \(options.timeout)")
        for word in options.reloadCommand ?? [] { try require(!word.isEmpty && !word.contains(" "), "reload command word \(word.debugDescription)") }
    }
}
