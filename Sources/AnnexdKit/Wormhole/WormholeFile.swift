import Crypto
import NIOCore
import NIOPosix
import Shared
import Synchronization

/// A file received through a wormhole.
public struct ReceivedFile: Sendable, Equatable {
    /// The name the sender offered (any directory part removed).
    public var filename: String
    public var bytes: [UInt8]
    /// How the data came: "direct to HOST:PORT", "direct from …" or "relay HOST:PORT".
    public var route: String
}

extension Wormhole {
    /// Records of this size, as the Python CLI sends them (Twisted's FileSender chunk).
    static let recordSize = 16384

    /// Sends `bytes` as a file named `filename`, like `wormhole send FILE`: the transit hints
    /// and the offer go out as phases 0 and 1; once the receiver accepts, the data goes over
    /// the first Transit connection through (direct or relay) and the receiver's SHA-256 ack
    /// is checked. Returns the route the data took.
    @discardableResult
    public static func sendFile(_ bytes: [UInt8], filename: String, code: WormholeCode? = nil, wordCount: Int = 2,
                                configuration: Configuration = .init(),
                                onCode: @escaping @Sendable (WormholeCode) -> Void = { _ in }) async throws -> String {
        let options = configuration.effectiveTransit
        let side = try await TransitSide.open(.sender, options)
        defer { side.close() }
        let race = side.race, worker = side.worker, hints = side.hints
        let group = MultiThreadedEventLoopGroup.singleton
        if let code { onCode(code) }
        let outcome = try await run(configuration, start: { m in
            var out = code.map { m.setCode($0) } ?? m.allocateCode(wordCount: wordCount)
            out += m.send(FileTransferMessage.transit(hints))
            out += m.send(FileTransferMessage.offer(filename: filename, size: bytes.count))
            return out
        }, onEvent: { event, m, o, poster in
            switch event {
            case .codeAllocated(let c):
                onCode(c)
                return []
            case .message(_, let body):
                guard let msg = try? JSONValue(parsing: body) else {
                    o.error = .peerError("the receiver sent a message that is not JSON")
                    return m.close(mood: .errory)
                }
                if let error = msg["error"]?.stringValue {
                    o.error = .peerError("the receiver refused the file: \(error)")
                    return m.close(mood: .happy)
                }
                if let transit = msg["transit"] { o.peerHints = TransitHints(json: transit) }
                guard let answer = msg["answer"] else { return [] }
                guard answer["file_ack"]?.stringValue == "ok", let key = m.key else {
                    o.error = .peerError("the receiver did not accept the file: \(answer)")
                    return m.close(mood: .happy)
                }
                let keys = TransitKeys(transitKey: WormholeKeys.transitKey(key))
                race.start(keys)
                TransitConnector.connectAll(race: race, peer: o.peerHints, options: options, group: group)
                worker.start(poster) {
                    let route = try await sendRecords(bytes, keys: keys, race: race, timeout: options.timeout)
                    return { m, o in
                        o.done = true
                        o.route = route
                        return m.close(mood: .happy)
                    }
                }
                return []
            default:
                return []
            }
        })
        guard outcome.done, let route = outcome.route else {
            throw WormholeClientError.wormhole(.protocolError("the wormhole closed before the file was sent"))
        }
        return route
    }

    /// Receives one file like `wormhole receive --accept-file`: answers the sender's hints with
    /// ours, accepts a file offer of at most `maxSize` bytes (larger ones, text and directories
    /// are refused with an `error` message to the sender), takes the data from the first
    /// Transit connection through and acknowledges it with its SHA-256.
    public static func receiveFile(code: WormholeCode, configuration: Configuration = .init(),
                                   maxSize: Int = 64 << 20) async throws -> ReceivedFile {
        let options = configuration.effectiveTransit
        let side = try await TransitSide.open(.receiver, options)
        defer { side.close() }
        let race = side.race, worker = side.worker, hints = side.hints
        let group = MultiThreadedEventLoopGroup.singleton
        let outcome = try await run(configuration, start: { m in m.setCode(code) }, onEvent: { event, m, o, poster in
            guard case .message(_, let body) = event else { return [] }
            func refuse(_ why: String) -> [MailboxMachine.Action] {
                o.error = .peerError(why)
                return m.send(FileTransferMessage.error("transfer rejected: \(why)")) + m.close(mood: .happy)
            }
            guard let msg = try? JSONValue(parsing: body) else {
                o.error = .peerError("the sender sent a message that is not JSON")
                return m.close(mood: .errory)
            }
            if let error = msg["error"]?.stringValue {
                o.error = .peerError("the sender reported an error: \(error)")
                return m.close(mood: .happy)
            }
            var out: [MailboxMachine.Action] = []
            if let transit = msg["transit"] {
                o.peerHints = TransitHints(json: transit)
                if !o.hintsSent {
                    o.hintsSent = true
                    out += m.send(FileTransferMessage.transit(hints))
                }
            }
            guard let offer = msg["offer"] else { return out }
            guard let file = offer["file"] else {
                let what = offer["message"] != nil ? "a text message" : offer["directory"] != nil ? "a directory" : "something unknown"
                return out + refuse("the sender offered \(what), not a file")
            }
            guard let size = file["filesize"]?.intValue, size >= 0 else {
                return out + refuse("the file offer has no size")
            }
            guard size <= maxSize else {
                return out + refuse("the file is \(size) bytes, more than the \(maxSize) accepted")
            }
            guard let key = m.key else { return out }
            let filename = FileTransferMessage.safeFilename(file["filename"]?.stringValue ?? "")
            if !o.hintsSent {
                o.hintsSent = true
                out += m.send(FileTransferMessage.transit(hints))
            }
            out += m.send(FileTransferMessage.fileAck)
            let keys = TransitKeys(transitKey: WormholeKeys.transitKey(key))
            race.start(keys)
            TransitConnector.connectAll(race: race, peer: o.peerHints, options: options, group: group)
            worker.start(poster) {
                let (bytes, route) = try await receiveRecords(size: Int(size), keys: keys, race: race, timeout: options.timeout)
                return { m, o in
                    o.file = ReceivedFile(filename: filename, bytes: bytes, route: route)
                    o.done = true
                    return m.close(mood: .happy)
                }
            }
            return out
        })
        guard let file = outcome.file else {
            throw WormholeClientError.wormhole(.protocolError("the wormhole closed without a file"))
        }
        return file
    }

    /// The file's records, then the receiver's ack, checked against our SHA-256.
    static func sendRecords(_ bytes: [UInt8], keys: TransitKeys, race: TransitRace, timeout: Duration) async throws -> String {
        let connection = try await race.winner(timeout: timeout)
        defer { connection.close() }
        var writer = TransitRecordWriter(key: keys.senderRecordKey)
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + recordSize, bytes.count)
            try await connection.write(writer.seal(Array(bytes[offset..<end])))
            offset = end
        }
        var reader = TransitRecordReader(key: keys.receiverRecordKey, maxRecordLength: 1 << 16)
        for try await chunk in connection.inbound {
            reader.append(chunk)
            guard let record = try reader.next() else { continue }
            let ack = try? JSONValue(parsing: record)
            guard ack?["ack"]?.stringValue == "ok" else {
                throw WormholeError.transit("the receiver did not acknowledge the file (\(String(decoding: record.prefix(200), as: UTF8.self)))")
            }
            let ours = Hex.encode(Array(SHA256.hash(data: bytes)))
            guard let theirs = ack?["sha256"]?.stringValue, theirs == ours else {
                throw WormholeError.transit("the receiver got different data: its SHA-256 is \(ack?["sha256"]?.stringValue ?? "missing"), ours \(ours)")
            }
            return connection.route
        }
        throw WormholeError.transit("the transit connection (\(connection.route)) closed before the receiver acknowledged the file")
    }

    /// `size` bytes of records, then our ack with their SHA-256.
    static func receiveRecords(size: Int, keys: TransitKeys, race: TransitRace, timeout: Duration) async throws -> ([UInt8], String) {
        let connection = try await race.winner(timeout: timeout)
        defer { connection.close() }
        var reader = TransitRecordReader(key: keys.senderRecordKey)
        var data: [UInt8] = []
        data.reserveCapacity(size)
        if size > 0 {
            reading: for try await chunk in connection.inbound {
                reader.append(chunk)
                while let record = try reader.next() {
                    data += record
                    guard data.count <= size else {
                        throw WormholeError.transit("the sender sent more than the \(size) bytes it offered")
                    }
                    if data.count == size { break reading }
                }
            }
        }
        guard data.count == size else {
            throw WormholeError.transit("the transit connection (\(connection.route)) closed after \(data.count) of \(size) bytes")
        }
        var writer = TransitRecordWriter(key: keys.receiverRecordKey)
        try await connection.write(writer.seal(FileTransferMessage.transitAck(sha256: Array(SHA256.hash(data: data)))))
        return (data, connection.route)
    }

    /// The Transit work of one exchange, cancelled when the wormhole ends; its result (or
    /// failure) is handed back to the mailbox driver as a step.
    final class Worker: Sendable {
        private let task = Mutex<Task<Void, Never>?>(nil)

        func start(_ poster: Poster, _ body: @escaping @Sendable () async throws -> Step) {
            let t = Task {
                do {
                    poster.post(try await body())
                } catch {
                    let failure: WormholeError = (error as? WormholeError) ?? .transit("\(error)")
                    poster.post { m, o in
                        o.error = failure
                        return m.close(mood: .errory)
                    }
                }
            }
            task.withLock { $0 = t }
        }

        func cancel() { task.withLock { $0?.cancel() } }
    }
}

/// One side's Transit for a file: the race of its connections, its listener (unless
/// relay-only) and the hints that advertise them, closed together.
private struct TransitSide {
    let race: TransitRace
    let listener: TransitListener?
    let worker = Wormhole.Worker()
    let hints: TransitHints

    static func open(_ role: TransitRole, _ options: TransitOptions) async throws -> TransitSide {
        let race = TransitRace(role: role)
        let listener = options.listen ? try await TransitListener.bind(race: race, group: MultiThreadedEventLoopGroup.singleton) : nil
        let hints = TransitHints(direct: listener?.hints(addresses: options.advertisedAddresses, port: options.advertisedPort) ?? [],
                                 relays: options.relay.map { [$0] } ?? [])
        return TransitSide(race: race, listener: listener, hints: hints)
    }

    func close() {
        worker.cancel()
        race.finish()
        listener?.close()
    }
}
