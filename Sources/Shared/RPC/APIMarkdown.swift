/// docs/API.md, written from the OpenRPC document (methods and `x-events`), so the page for
/// people writing clients says exactly what `rpc.discover` says.
public enum APIMarkdown {
    public static func render(_ document: JSONValue) -> String {
        var out = """
        # annexd API

        Generated from the OpenRPC document (`annexd openrpc --markdown`, `make openrpc`); a test
        fails when this page and the daemon differ. The machine-readable form is
        `contrib/openrpc.json`, also returned by `rpc.discover`.

        JSON-RPC 2.0 on annexd's unix socket (`$XDG_RUNTIME_DIR/annexd/rpc.sock`), one JSON text
        per line, parameters by name. An error's `data.reason` is a stable snake_case code and
        its `message` says what went wrong and what to do.


        """
        out += "## Methods\n\n"
        for method in document["methods"]?.arrayValue ?? [] {
            let name = method["name"]?.stringValue ?? "?"
            out += "### `\(name)`\n\n\(method["summary"]?.stringValue ?? "")\n\n"
            let params = method["params"]?.arrayValue ?? []
            if params.isEmpty {
                out += "No parameters.\n\n"
            } else {
                out += "| param | type | required | description |\n|---|---|---|---|\n"
                for p in params {
                    out += "| `\(p["name"]?.stringValue ?? "?")` | \(typeName(p["schema"])) | \(p["required"]?.boolValue == true ? "yes" : "no") | \(cell(p["description"]?.stringValue)) |\n"
                }
                out += "\n"
            }
            out += "Result: " + fieldsLine(method["result"]?["schema"]) + "\n\n"
        }
        let events = document["x-events"]
        out += """
        ## Events

        `events.subscribe` streams `\(events?["notification"]?.stringValue ?? "event")` notifications. Every event carries the
        envelope `id` (gapless within a boot), `boot`, `type` and `time`, then exactly the fields
        listed for its type. `repo` is always the repository's path, with its `uuid` beside it.
        Types are `noun.verb_past`, fields snake_case.


        """
        for event in events?["events"]?.arrayValue ?? [] {
            out += "### `\(event["name"]?.stringValue ?? "?")`\n\n\(event["summary"]?.stringValue ?? "")\n\n"
            out += propertiesTable(event["params"], skipping: ["id", "boot", "type", "time"], empty: "No fields beyond the envelope.")
        }
        if let overflow = events?["overflow"] {
            out += "### `\(overflow["notification"]?.stringValue ?? "event.overflow")` (a notification of its own)\n\n"
            out += (overflow["params"]?["description"]?.stringValue ?? "") + ".\n\n"
            out += propertiesTable(overflow["params"], skipping: [], empty: "")
        }
        return out
    }

    private static func propertiesTable(_ schema: JSONValue?, skipping: Set<String>, empty: String) -> String {
        let props = (schema?["properties"]?.objectValue.map(Array.init) ?? []).filter { !skipping.contains($0.key) }
        guard !props.isEmpty else { return empty + "\n\n" }
        var out = "| field | type | description |\n|---|---|---|\n"
        for (key, p) in props { out += "| `\(key)` | \(typeName(p)) | \(cell(p["description"]?.stringValue)) |\n" }
        return out + "\n"
    }

    /// "object: `a` (string), `b` (integer)", or the type.
    private static func fieldsLine(_ schema: JSONValue?) -> String {
        guard let props = schema?["properties"]?.objectValue, !props.isEmpty else { return typeName(schema) }
        return "object: " + props.map { "`\($0.key)` (\(typeName($0.value)))" }.joined(separator: ", ")
    }

    static func typeName(_ schema: JSONValue?) -> String {
        guard let schema else { return "any" }
        if let values = schema["enum"]?.arrayValue { return values.map { "`\($0.serialized())`" }.joined(separator: " or ") }
        if let any = schema["anyOf"]?.arrayValue { return any.map { typeName($0) }.joined(separator: " or ") }
        if let ref = schema["$ref"]?.stringValue { return "[schema](\(ref))" }
        switch schema["type"]?.stringValue {
        case "array"?: return "array of " + typeName(schema["items"])
        case let t?: return t
        case nil: return "any"
        }
    }

    private static func cell(_ text: String?) -> String {
        var out = ""
        for c in text ?? "" {
            switch c {
            case "|": out += "\\|"
            case "\n": out += " "
            default: out.append(c)
            }
        }
        return out
    }
}
