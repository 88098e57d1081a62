import Dispatch
import Shared

/// The RPC server's pure parts: line framing (RPCLineFramer, as the server's decoder uses
/// it), JSON-RPC parsing and the dispatcher with every method of AnnexdAPI registered. The
/// handlers are stand-ins (there is no daemon): they get the decoded params, check that
/// they encode and decode again, and answer with an error; what is fuzzed is everything
/// before a real handler would run.
enum RPCFuzz {
    /// RPCServer.Limits' default line bound (AnnexdKit is not linked into the fuzzer).
    static let maxLineBytes = 1 << 20
    static let roundTripFailure = "fuzz_params_round_trip"

    struct NoCaller: Sendable {}

    static let dispatcher: RPCDispatcher<NoCaller> = {
        var d = RPCDispatcher<NoCaller>(version: AnnexdAPI.version, extensions: AnnexdAPI.extensions)
        for method in AnnexdAPI.methods { register(method, in: &d) }
        return d
    }()

    static func register<M: RPCMethod>(_ method: M.Type, in d: inout RPCDispatcher<NoCaller>) {
        d.registerInline(method) { params, _ in
            let reason: String
            do {
                _ = try M.Params(json: params.json, path: "params")
                reason = "fuzz_no_daemon"
            } catch {
                reason = roundTripFailure
            }
            throw RPCError(code: -32000, message: "no daemon behind the fuzzer", reason: reason)
        }
    }

    @Sendable static func rpc(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        var framer = RPCLineFramer(maxLength: maxLineBytes)
        var rest = input[...]
        var lines = 0
        while lines < 64 {
            let next: (length: Int, consumed: Int)?
            do { next = try framer.nextLine(in: rest) } catch { return }
            guard let next else { break }
            try require(next.length <= next.consumed - 1 && next.consumed <= rest.count, "framing \(next) of \(rest.count) bytes")
            try answer(Array(rest.prefix(next.length)))
            rest = rest.dropFirst(next.consumed)
            lines += 1
        }
    }

    static func answer(_ line: [UInt8]) throws(FuzzViolation) {
        let incoming = JSONRPC.parseIncoming(line)
        let reply = blocking { await dispatcher.reply(to: incoming, context: NoCaller()) }
        // A single request is answered inline by the server when it can: the same answer.
        if case .single(.request(let request)) = incoming, let inline = dispatcher.answerInline(request, context: NoCaller()) {
            let expected = request.id.map { RPCReply.single(RPCResponse(id: $0, result: inline)) } ?? .none
            try require(reply == expected, "the inline answer to \(request.method) differs")
        }
        guard let bytes = reply.serializedBytes() else {
            try require(incoming.entries.allSatisfy { if case .request(let r) = $0 { r.isNotification } else { false } },
                        "no reply to a text with a request or an invalid entry")
            return
        }
        try require(!bytes.contains(10), "a reply holds a raw newline (it would break the framing)")
        let parsed: RPCServerMessage
        do { parsed = try RPCServerMessage(parsing: bytes) } catch {
            throw FuzzViolation("the reply does not parse as a client reads it: \(error)")
        }
        let responses: [RPCResponse]
        switch parsed {
        case .response(let r): responses = [r]
        case .batch(let rs): responses = rs
        case .notification: throw FuzzViolation("a reply parsed as a notification")
        }
        try require(responses.count <= incoming.entries.count, "\(responses.count) responses to \(incoming.entries.count) entries")
        for r in responses {
            try require(r.error?.reason != roundTripFailure, "params of a request did not survive encode/decode")
        }
    }

    /// Runs `body` to completion from synchronous code (the fuzzer's callback).
    static func blocking(_ body: @escaping @Sendable () async -> RPCReply) -> RPCReply {
        let box = ReplyBox()
        Task {
            box.value = await body()
            box.done.signal()
        }
        box.done.wait()
        return box.value!
    }

    final class ReplyBox: @unchecked Sendable {
        var value: RPCReply?
        let done = DispatchSemaphore(value: 0)
    }
}
