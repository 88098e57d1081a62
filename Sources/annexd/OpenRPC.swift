import ArgumentParser
import Foundation
import Shared

/// `annexd openrpc`: prints the OpenRPC document of annexd's RPC methods, as `rpc.discover`
/// returns it, in a stable pretty form (members in their order, two-space indent, a final
/// newline). contrib/openrpc.json is this output; `make openrpc` regenerates it.
struct OpenRPC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openrpc",
        abstract: "Print the OpenRPC document of the RPC methods and events (contrib/openrpc.json).",
        shouldDisplay: false)

    @Flag(help: "Print it as the Markdown page for client authors instead (docs/API.md).")
    var markdown = false

    func run() throws {
        let document = AnnexdAPI.registry.openRPCDocument
        let text = markdown ? APIMarkdown.render(document) : Self.prettyJSON(document)
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// `value` as indented JSON text ending in a newline; scalars are written by jansson.
    static func prettyJSON(_ value: JSONValue) -> String {
        var out = ""
        write(value, indent: "", to: &out)
        return out + "\n"
    }

    private static func write(_ value: JSONValue, indent: String, to out: inout String) {
        let inner = indent + "  "
        switch value {
        case .array(let items) where !items.isEmpty:
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += inner
                write(item, indent: inner, to: &out)
                out += i == items.count - 1 ? "\n" : ",\n"
            }
            out += indent + "]"
        case .object(let object) where !object.isEmpty:
            out += "{\n"
            for (i, (key, item)) in object.enumerated() {
                out += inner + JSONValue.string(key).serialized() + ": "
                write(item, indent: inner, to: &out)
                out += i == object.count - 1 ? "\n" : ",\n"
            }
            out += indent + "}"
        default:
            out += value.serialized()
        }
    }
}
