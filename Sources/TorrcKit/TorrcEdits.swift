/// What an edit did. Adding what is already there, or removing what is absent, changes
/// nothing and says so.
public enum TorrcChange: Sendable, Equatable {
    case changed
    case unchanged
}

/// A `HiddenServiceDir` line and the `HiddenService*` options that follow it (tor applies
/// every HiddenService option to the last HiddenServiceDir before it).
public struct HiddenServiceBlock: Sendable, Equatable {
    /// Indices of the block's entries in `Torrc.entries` (comments between its options
    /// included, blank lines and comments after its last option not).
    public var range: Range<Int>
    public var directory: String
    /// The values of its `HiddenServicePort` lines, e.g. `1234 unix:/var/lib/tor-annex/…/s`.
    public var ports: [HiddenServicePort]
}

/// One `HiddenServicePort VIRTPORT [TARGET]` value.
public struct HiddenServicePort: Sendable, Equatable {
    public var virtualPort: Int?
    public var target: String

    public init(value: String) {
        let words = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        virtualPort = words.first.flatMap { Int($0) }
        target = words.count > 1 ? words[1] : ""
    }

    public init(virtualPort: Int, target: String) {
        self.virtualPort = virtualPort
        self.target = target
    }

    public var value: String { "\(virtualPort.map(String.init) ?? "") \(target)" }

    /// The socket path of a `unix:` target, or nil.
    public var unixSocket: String? {
        guard target.hasPrefix("unix:") else { return nil }
        var path = String(target.dropFirst(5))
        if path.hasPrefix("\""), path.hasSuffix("\""), path.count >= 2 { path = String(path.dropFirst().dropLast()) }
        return path
    }
}

extension Torrc {
    static func isHiddenServiceOption(_ entry: Entry) -> Bool {
        entry.name?.lowercased().hasPrefix("hiddenservice") ?? false
    }

    /// Paths compare without trailing slashes (tor accepts `HiddenServiceDir /x/`).
    public static func samePath(_ a: String, _ b: String) -> Bool {
        func trim(_ s: String) -> Substring {
            var t = Substring(s)
            while t.count > 1, t.hasSuffix("/") { t = t.dropLast() }
            return t
        }
        return trim(a) == trim(b)
    }

    public var hiddenServices: [HiddenServiceBlock] {
        var blocks: [HiddenServiceBlock] = []
        var i = 0
        while i < entries.count {
            guard entries[i].isOption("HiddenServiceDir") else { i += 1; continue }
            let start = i
            var end = i + 1, scan = i + 1
            var ports: [HiddenServicePort] = []
            while scan < entries.count {
                let e = entries[scan]
                if e.name == nil { scan += 1; continue }
                guard Self.isHiddenServiceOption(e), !e.isOption("HiddenServiceDir") else { break }
                if e.isOption("HiddenServicePort") { ports.append(HiddenServicePort(value: e.value ?? "")) }
                scan += 1
                end = scan
            }
            blocks.append(HiddenServiceBlock(range: start..<end, directory: entries[start].value ?? "", ports: ports))
            i = end
        }
        return blocks
    }

    public func hiddenService(directory: String) -> HiddenServiceBlock? {
        hiddenServices.first { Self.samePath($0.directory, directory) }
    }

    /// The block whose HiddenServicePort forwards to the unix socket `socket` (git-annex
    /// finds an existing service this way).
    public func hiddenService(socket: String) -> HiddenServiceBlock? {
        hiddenServices.first { $0.ports.contains { $0.unixSocket.map { Self.samePath($0, socket) } ?? false } }
    }

    /// Every virtual port any hidden service uses.
    public var usedHiddenServicePorts: Set<Int> {
        Set(hiddenServices.flatMap { $0.ports.compactMap(\.virtualPort) })
    }

    /// Appends a blank line, `HiddenServiceDir dir` and one `HiddenServicePort` per port,
    /// exactly as git-annex enable-tor writes them. No-op when `dir` has a block already.
    @discardableResult
    public mutating func addHiddenService(directory: String, ports: [HiddenServicePort]) -> TorrcChange {
        if hiddenService(directory: directory) != nil { return .unchanged }
        append([Self.blankEntry, Self.optionEntry("HiddenServiceDir", directory)]
               + ports.map { Self.optionEntry("HiddenServicePort", $0.value) })
        return .changed
    }

    /// Removes the block of `dir`, and one blank line right before it (the one
    /// `addHiddenService` wrote), so that add then remove gives back the same bytes.
    @discardableResult
    public mutating func removeHiddenService(directory: String) -> TorrcChange {
        guard let block = hiddenService(directory: directory) else { return .unchanged }
        var range = block.range
        if range.lowerBound > 0, entries[range.lowerBound - 1].kind == .blank {
            range = (range.lowerBound - 1)..<range.upperBound
        }
        entries.removeSubrange(range)
        return .changed
    }
}

/// The lines that make tor's control socket usable by a group.
public struct ControlSocketSettings: Sendable, Equatable {
    public var socketPath: String
    public var cookieFile: String

    public init(socketPath: String, cookieFile: String) {
        self.socketPath = socketPath
        self.cookieFile = cookieFile
    }

    /// Options that must be `1`.
    public static let flags = ["ControlSocketsGroupWritable", "CookieAuthentication", "CookieAuthFileGroupReadable"]
    static let related = Set((flags + ["CookieAuthFile"]).map { $0.lowercased() })
}

public enum TorrcConflict: Error, Equatable, CustomStringConvertible {
    case optionSetOtherwise(name: String, value: String)

    public var description: String {
        switch self {
        case .optionSetOtherwise(let name, let value):
            return "torrc sets \(name) \(value); change it by hand or remove that line first"
        }
    }
}

extension Torrc {
    /// The `ControlSocket` entry for `path` (its first word, `unix:` prefix allowed).
    public func controlSocketIndex(path: String) -> Int? {
        options(named: "ControlSocket").first { entry in
            var first = String(entry.entry.value?.split(separator: " ").first ?? "")
            if first.hasPrefix("unix:") { first = String(first.dropFirst(5)) }
            if first.hasPrefix("\""), first.hasSuffix("\""), first.count >= 2 { first = String(first.dropFirst().dropLast()) }
            return Self.samePath(first, path)
        }?.index
    }

    /// The last value of a single-valued option (tor uses the last one).
    public func lastValue(of name: String) -> String? {
        options(named: name).last?.entry.value
    }

    /// Adds whatever is missing of: `ControlSocket PATH GroupWritable RelaxDirModeCheck`,
    /// `ControlSocketsGroupWritable 1`, `CookieAuthentication 1`,
    /// `CookieAuthFileGroupReadable 1`, `CookieAuthFile FILE` (kept if set otherwise).
    /// A flag set to something other than 1 is a conflict: it is not silently overridden.
    @discardableResult
    public mutating func enableControlSocket(_ settings: ControlSocketSettings) throws -> TorrcChange {
        var new: [Entry] = []
        if controlSocketIndex(path: settings.socketPath) == nil {
            new.append(Self.optionEntry("ControlSocket", "\(settings.socketPath) GroupWritable RelaxDirModeCheck"))
        }
        for flag in ControlSocketSettings.flags {
            switch lastValue(of: flag) {
            case "1": continue
            case nil: new.append(Self.optionEntry(flag, "1"))
            case let other?: throw TorrcConflict.optionSetOtherwise(name: flag, value: other)
            }
        }
        if lastValue(of: "CookieAuthFile") == nil {
            new.append(Self.optionEntry("CookieAuthFile", settings.cookieFile))
        }
        if new.isEmpty { return .unchanged }
        append([Self.blankEntry] + new)
        return .changed
    }

    /// Removes the `ControlSocket` line for `path` with the related options written right
    /// after it (as `enableControlSocket` writes them), and the blank line before it.
    @discardableResult
    public mutating func removeControlSocket(path: String) -> TorrcChange {
        guard let index = controlSocketIndex(path: path) else { return .unchanged }
        var end = index + 1
        while end < entries.count, let name = entries[end].name?.lowercased(),
              ControlSocketSettings.related.contains(name) { end += 1 }
        var start = index
        if start > 0, entries[start - 1].kind == .blank { start -= 1 }
        entries.removeSubrange(start..<end)
        return .changed
    }

    /// The cookie file tor will write: CookieAuthFile if set, else `nil` (DataDirectory's).
    public var cookieAuthFile: String? { lastValue(of: "CookieAuthFile") }
}
