import Shared

/// The state `Wormhole.run` keeps across mailbox connections: the machine, what the
/// application found out, and the actions still to perform.
struct MailboxDriver {
    /// What the loop reacts to: a server frame or the end of connection `connection` (frames
    /// of an earlier connection are stale), or a step posted by work outside the machine.
    enum Input: Sendable {
        case frame(Int, [UInt8])
        case ended(Int)
        case step(Wormhole.Step)
    }

    var machine: MailboxMachine
    var outcome = Wormhole.Outcome()
    var failure: WormholeError?
    /// The machine closed (or gave up): no more connections.
    var finished = false
    var queue: [MailboxMachine.Action] = []
    let trace: (@Sendable (String) -> Void)?
    let onEvent: @Sendable (MailboxEvent, inout MailboxMachine, inout Wormhole.Outcome, Wormhole.Poster) -> [MailboxMachine.Action]
    let poster: Wormhole.Poster

    /// Performs the queued actions; `send` is nil while there is no connection (the machine
    /// asks for no sends then).
    mutating func drain(send: (@Sendable ([UInt8]) async throws -> Void)?) async throws {
        while !queue.isEmpty {
            let action = queue.removeFirst()
            trace?("\(action)")
            switch action {
            case .send(let message): try await send?(message.serializedBytes())
            case .event(let event):
                if case .failed(let e) = event, failure == nil { failure = e }
                if case .closed = event { finished = true }
                queue += onEvent(event, &machine, &outcome, poster)
            case .disconnect: finished = true
            }
        }
    }

    /// The connection dropped: sends not made are dropped too (on the next connection the
    /// machine binds first, then sends again what the server may have lost).
    mutating func dropped() {
        machine.connectionDropped()
        queue.removeAll { if case .send = $0 { return true } else { return false } }
    }

    /// Runs connection number `connection` until the machine finished or the connection
    /// dropped (its end, or a failed send).
    mutating func serve(_ inputs: inout AsyncStream<Input>.Iterator, connection: Int,
                        send: @escaping @Sendable ([UInt8]) async throws -> Void) async throws {
        do {
            try await drain(send: send)
            while !finished, let input = await inputs.next() {
                switch input {
                case .frame(let n, let text):
                    guard n == connection else { continue }
                    trace?("<- " + String(decoding: text, as: UTF8.self))
                    queue += machine.received(text: text)
                case .step(let step):
                    queue += step(&machine, &outcome)
                case .ended(let n):
                    guard n == connection else { continue }
                    return
                }
                try await drain(send: send)
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            trace?("sending to the mailbox server failed: \(error)")
        }
    }
}
