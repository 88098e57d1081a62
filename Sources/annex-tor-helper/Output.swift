#if canImport(Glibc)
import Glibc
#endif
import TorrcKit

/// One JSON object, fields in a fixed order.
struct JSONObject {
    enum Value {
        case string(String)
        case int(Int)
        case bool(Bool)
    }

    private(set) var fields: [(String, Value)] = []

    mutating func set(_ key: String, _ value: Value) { fields.append((key, value)) }
    mutating func set(_ key: String, _ value: String?) { if let value { set(key, .string(value)) } }
    mutating func set(_ key: String, _ value: Int?) { if let value { set(key, .int(value)) } }
    mutating func set(_ key: String, _ value: Bool) { set(key, .bool(value)) }

    var text: String {
        "{" + fields.map { key, value in
            let v: String
            switch value {
            case .string(let s): v = Self.quote(s)
            case .int(let i): v = String(i)
            case .bool(let b): v = b ? "true" : "false"
            }
            return Self.quote(key) + ":" + v
        }.joined(separator: ",") + "}"
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

enum Output {
    /// Prints the result object and exits 0.
    static func succeed(_ object: JSONObject) -> Never {
        var result = JSONObject()
        result.set("ok", true)
        for (k, v) in object.fields { result.set(k, v) }
        print(result.text)
        exit(0)
    }

    /// Prints `{"ok":false,...}` and exits with the reason's code.
    static func fail(_ failure: HelperFailure, action: HelperCommand?, extra: JSONObject = JSONObject()) -> Never {
        var result = JSONObject()
        result.set("ok", false)
        result.set("action", action?.rawValue)
        result.set("error", failure.message)
        result.set("reason", failure.reason.rawValue)
        result.set("exit_code", Int(failure.reason.exitCode))
        for (k, v) in extra.fields { result.set(k, v) }
        print(result.text)
        exit(failure.reason.exitCode)
    }
}
