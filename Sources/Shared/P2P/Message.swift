/// One message of git-annex's P2P protocol, versions 0–4
/// (git-annex doc/design/p2p_protocol.mdwn, P2P/Protocol.hs).
public enum P2PMessage: Equatable, Sendable {
    case auth(uuid: String, token: String)
    case authSuccess(uuid: String)
    case authFailure
    case version(Int)
    case bypass([String])
    case connect(service: String)
    case connectDone(exitCode: Int)
    case notifyChange
    case changed([String])
    case checkPresent(AnnexKey)
    case lockContent(AnnexKey)
    case unlockContent
    case remove(AnnexKey)
    case removeBefore(timestamp: Int64, key: AnnexKey)
    case getTimestamp
    case timestamp(Int64)
    /// `file` is the AssociatedFile field exactly as on the wire (whitespace sent as `%`); "" when none.
    case get(offset: Int64, file: String, key: AnnexKey)
    case put(file: String, key: AnnexKey)
    case putFrom(offset: Int64)
    case alreadyHave
    case alreadyHavePlus([String])
    case success
    case successPlus([String])
    case failure
    case failurePlus([String])
    case data(length: Int64)
    case dataPresent
    case valid
    case invalid
    case error(String)
}

/// Why a line is not a message. `line` is the text to send back after `ERROR `.
public enum P2PParseError: Error, Equatable, Sendable {
    case unknownCommand
    case invalidKey(KeyError)
    case malformed(String)

    public var errorText: String {
        switch self {
        case .unknownCommand: return "unknown command"
        case .invalidKey(let e): return e.description
        case .malformed(let why): return why
        }
    }
}

extension P2PMessage {
    /// Highest protocol version annexd speaks.
    public static let maxVersion = 4

    /// The command word of the message, as on the wire.
    public var command: String {
        String(wireLine.prefix { $0 != " " })
    }

    /// The line without its trailing newline.
    public var wireLine: String {
        func withList(_ c: String, _ l: [String]) -> String { l.isEmpty ? c : c + " " + l.joined(separator: " ") }
        switch self {
        case .auth(let u, let t): return "AUTH \(u) \(t)"
        case .authSuccess(let u): return "AUTH-SUCCESS \(u)"
        case .authFailure: return "AUTH-FAILURE"
        case .version(let v): return "VERSION \(v)"
        case .bypass(let l): return withList("BYPASS", l)
        case .connect(let s): return "CONNECT \(s)"
        case .connectDone(let c): return "CONNECTDONE \(c)"
        case .notifyChange: return "NOTIFYCHANGE"
        case .changed(let l): return withList("CHANGED", l)
        case .checkPresent(let k): return "CHECKPRESENT \(k)"
        case .lockContent(let k): return "LOCKCONTENT \(k)"
        case .unlockContent: return "UNLOCKCONTENT"
        case .remove(let k): return "REMOVE \(k)"
        case .removeBefore(let t, let k): return "REMOVE-BEFORE \(t) \(k)"
        case .getTimestamp: return "GETTIMESTAMP"
        case .timestamp(let t): return "TIMESTAMP \(t)"
        case .get(let o, let f, let k): return "GET \(o) \(f) \(k)"
        case .put(let f, let k): return "PUT \(f) \(k)"
        case .putFrom(let o): return "PUT-FROM \(o)"
        case .alreadyHave: return "ALREADY-HAVE"
        case .alreadyHavePlus(let l): return withList("ALREADY-HAVE-PLUS", l)
        case .success: return "SUCCESS"
        case .successPlus(let l): return withList("SUCCESS-PLUS", l)
        case .failure: return "FAILURE"
        case .failurePlus(let l): return withList("FAILURE-PLUS", l)
        case .data(let n): return "DATA \(n)"
        case .dataPresent: return "DATA-PRESENT"
        case .valid: return "VALID"
        case .invalid: return "INVALID"
        case .error(let m): return "ERROR \(m)"
        }
    }

    /// Parses one line (without the newline). The last field takes the rest of the line.
    public static func parse(_ line: String) throws(P2PParseError) -> P2PMessage {
        let (cmd, rest) = split1(Substring(line))
        func none() throws(P2PParseError) {
            if rest != nil { throw .unknownCommand }
        }
        func one() throws(P2PParseError) -> String {
            guard let r = rest, !r.isEmpty else { throw .unknownCommand }
            return String(r)
        }
        func list() -> [String] {
            (rest ?? "").split(separator: " ").map(String.init)
        }
        func key(_ s: Substring) throws(P2PParseError) -> AnnexKey {
            do { return try AnnexKey(parsing: String(s)) } catch let e as KeyError { throw .invalidKey(e) } catch { throw .unknownCommand }
        }
        func number(_ s: Substring) throws(P2PParseError) -> Int64 {
            guard let n = AnnexKey.parseNumber(s) else { throw .malformed("\(cmd): \"\(KeyError.printable(String(s)))\" is not a number") }
            return n
        }
        switch cmd {
        case "AUTH":
            let (u, t) = split1(Substring(try one()))
            guard let t else { throw .unknownCommand }
            return .auth(uuid: String(u), token: String(t))
        case "AUTH-SUCCESS": return .authSuccess(uuid: try one())
        case "AUTH-FAILURE": try none(); return .authFailure
        case "VERSION":
            let n = try number(Substring(try one()))
            return .version(n > Int64(Int32.max) ? Int(Int32.max) : Int(n))
        case "BYPASS": return .bypass(list())
        case "CONNECT": return .connect(service: try one())
        case "CONNECTDONE":
            let s = try one()
            // Exit codes may be negative (signals) in principle.
            guard let c = Int(s) else { throw .malformed("CONNECTDONE: \"\(KeyError.printable(s))\" is not a number") }
            return .connectDone(exitCode: c)
        case "NOTIFYCHANGE": try none(); return .notifyChange
        case "CHANGED": return .changed(list())
        case "CHECKPRESENT": return .checkPresent(try key(Substring(try one())))
        case "LOCKCONTENT": return .lockContent(try key(Substring(try one())))
        case "UNLOCKCONTENT": return .unlockContent
        case "REMOVE": return .remove(try key(Substring(try one())))
        case "REMOVE-BEFORE":
            let (t, k) = split1(Substring(try one()))
            guard let k else { throw .unknownCommand }
            return .removeBefore(timestamp: try number(t), key: try key(k))
        case "GETTIMESTAMP": try none(); return .getTimestamp
        case "TIMESTAMP": return .timestamp(try number(Substring(try one())))
        case "GET":
            let (o, r1) = split1(Substring(try one()))
            guard let r1 else { throw .unknownCommand }
            let (f, k) = split1(r1)
            guard let k else { throw .unknownCommand }
            return .get(offset: try number(o), file: String(f), key: try key(k))
        case "PUT":
            let (f, k) = split1(Substring(try one()))
            guard let k else { throw .unknownCommand }
            return .put(file: String(f), key: try key(k))
        case "PUT-FROM": return .putFrom(offset: try number(Substring(try one())))
        case "ALREADY-HAVE": try none(); return .alreadyHave
        case "ALREADY-HAVE-PLUS": return .alreadyHavePlus(list())
        case "SUCCESS": try none(); return .success
        case "SUCCESS-PLUS": return .successPlus(list())
        case "FAILURE": try none(); return .failure
        case "FAILURE-PLUS": return .failurePlus(list())
        case "DATA": return .data(length: try number(Substring(try one())))
        case "DATA-PRESENT": try none(); return .dataPresent
        case "VALID": try none(); return .valid
        case "INVALID": try none(); return .invalid
        case "ERROR": return .error(String(rest ?? ""))
        default: throw .unknownCommand
        }
    }

    /// Splits at the first space: (before, after) or (all, nil).
    private static func split1(_ s: Substring) -> (Substring, Substring?) {
        guard let i = s.firstIndex(of: " ") else { return (s, nil) }
        return (s[..<i], s[s.index(after: i)...])
    }
}
