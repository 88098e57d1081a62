@_spi(_Unicode) import Swift

/// A wormhole code: `NAMEPLATE-WORD-WORD…` such as `4-purple-sausages`.
///
/// The nameplate (decimal digits) names the rendezvous on the mailbox server; the **whole
/// code** (nameplate included, NFC-normalised, UTF-8) is the SPAKE2 password. Like
/// magic-wormhole 0.24 (`_code.validate_code`), parsing checks only the form: no whitespace,
/// a numeric nameplate, a `-`. The words are not checked against the word list (any text both
/// sides type the same works, e.g. `0-`); `unlistedWords` says which ones are not PGP words at
/// their position, for a gentle warning.
public struct WormholeCode: Sendable, Hashable, CustomStringConvertible {
    /// The code exactly as given (after `init(userInput:)`'s clean-up).
    public let text: String
    /// The part before the first `-`: ASCII digits.
    public let nameplate: String
    /// The part after the first `-` (may be empty: `0-`).
    public var wordsPart: Substring { text[text.index(after: text.firstIndex(of: "-")!)...] }
    /// The words, split at `-`.
    public var words: [Substring] { wordsPart.split(separator: "-", omittingEmptySubsequences: false) }

    /// The mailbox server refuses longer nameplates.
    public static let maxNameplateLength = 40

    public var description: String { text }

    /// Parses a code as magic-wormhole does (`KeyFormatError` cases), with messages that say
    /// what to type instead.
    public init(parsing text: String) throws(WormholeCodeError) {
        guard !text.isEmpty else { throw .empty }
        if text.unicodeScalars.contains(where: { $0.properties.isWhitespace }) {
            throw .containsWhitespace(text)
        }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw .containsControlCharacter(text)
        }
        guard let dash = text.firstIndex(of: "-") else {
            if text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { throw .missingWords(text) }
            throw .nameplateNotNumeric(text, nameplate: text)
        }
        let nameplate = String(text[..<dash])
        try Self.validateNameplate(nameplate, code: text)
        self.text = text
        self.nameplate = nameplate
    }

    /// Parses what a user typed: surrounding whitespace is dropped and words separated by
    /// whitespace are joined with `-` (as git-annex does), so `4 purple sausages` and
    /// ` 4-purple-sausages\n` both give `4-purple-sausages`.
    public init(userInput: String) throws(WormholeCodeError) {
        let parts = userInput.split(whereSeparator: { $0.unicodeScalars.allSatisfy(\.properties.isWhitespace) })
        try self.init(parsing: parts.joined(separator: "-"))
    }

    /// Checks a nameplate on its own (`_nameplate.validate_nameplate`).
    public static func validateNameplate(_ nameplate: String, code: String? = nil) throws(WormholeCodeError) {
        guard !nameplate.isEmpty, nameplate.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw .nameplateNotNumeric(code ?? nameplate, nameplate: nameplate)
        }
        guard nameplate.utf8.count <= maxNameplateLength else { throw .nameplateTooLong(nameplate) }
    }

    /// A new code on `nameplate` with `wordCount` words chosen as magic-wormhole's
    /// `PGPWordList.choose_words` does: one random byte per word, odd list first, alternating,
    /// lower case. `randomByte` defaults to libsodium's generator.
    public static func generate(nameplate: String, wordCount: Int = 2,
                                randomByte: () -> UInt8 = { Sodium.randomBytes(1)[0] }) throws(WormholeCodeError) -> WormholeCode {
        try validateNameplate(nameplate)
        guard wordCount >= 1 else { throw .wordCountTooSmall(wordCount) }
        let words = (0..<wordCount).map { WordList.word(randomByte(), position: $0) }
        return try WormholeCode(parsing: nameplate + "-" + words.joined(separator: "-"))
    }

    /// The SPAKE2 password: the code, NFC-normalised, in UTF-8 (`util.to_bytes`).
    public var passwordBytes: [UInt8] { Self.nfcBytes(text) }

    /// Words that are not in the PGP list expected at their position (lower-cased compare).
    /// Not an error: magic-wormhole accepts any words; a caller may warn about typos.
    public var unlistedWords: [String] {
        words.enumerated().compactMap { i, w in
            WordList.words(forPosition: i).contains(w.lowercased()) ? nil : String(w)
        }
    }

    /// `s` NFC-normalised, as UTF-8 bytes (Python's `unicodedata.normalize("NFC", s)`).
    public static func nfcBytes(_ s: String) -> [UInt8] {
        Array(s._nfcCodeUnits)
    }
}

/// Why a wormhole code was refused. The description says what to type instead.
public enum WormholeCodeError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case containsWhitespace(String)
    case containsControlCharacter(String)
    case nameplateNotNumeric(String, nameplate: String)
    case nameplateTooLong(String)
    case missingWords(String)
    case wordCountTooSmall(Int)
    /// Completion was asked for words on a prefix whose nameplate is not numeric.
    case incompleteCode(String)

    public var description: String {
        let example = "like 4-purple-sausages"
        switch self {
        case .empty:
            return "the wormhole code is empty: type the code the other side shows, \(example)"
        case .containsWhitespace(let c):
            return "the wormhole code '\(c)' contains spaces: separate the nameplate and the words with '-', \(example)"
        case .containsControlCharacter(let c):
            return "the wormhole code \(c.debugDescription) contains control characters: type it again, \(example)"
        case .nameplateNotNumeric(let c, let np):
            return "the wormhole code '\(c)' must start with a number (the nameplate), not '\(np)', "
                + "then '-' and the words, \(example)"
        case .nameplateTooLong(let np):
            return "the nameplate '\(np)' is longer than \(WormholeCode.maxNameplateLength) digits: check the code, \(example)"
        case .missingWords(let c):
            return "the wormhole code '\(c)' has only the nameplate: add '-' and the words, \(example)"
        case .wordCountTooSmall(let n):
            return "a wormhole code needs at least 1 word (asked for \(n)); 2 is the usual length"
        case .incompleteCode(let c):
            return "'\(c)' is not the start of a wormhole code: it must start with the nameplate digits and '-'"
        }
    }
}

/// Tab completion of a code being typed, as the `wormhole receive` prompt does it
/// (`_rlcompleter.CodeInputter` + `PGPWordList.get_completions`).
public enum CodeCompleter {
    /// Full-line completions of `text`, sorted:
    /// - no `-` yet (`""`, `"1"`): the `nameplates` (from the server's `list`) starting with
    ///   the text, each with a `-` appended;
    /// - `NAMEPLATE-words…`: the last partial word completed from the list for its position
    ///   (odd list for word 0, even for word 1, …), with a `-` appended while more words are
    ///   expected (`wordCount`). Matching is case-sensitive on the lower-case words, as in
    ///   magic-wormhole.
    public static func completions(of text: String, wordCount: Int = 2, nameplates: [String] = []) -> [String] {
        guard let dash = text.firstIndex(of: "-") else {
            return Set(nameplates.filter { $0.hasPrefix(text) }.map { $0 + "-" }).sorted()
        }
        let nameplate = text[..<dash]
        let words = text[text.index(after: dash)...]
        return wordCompletions(of: String(words), wordCount: wordCount).map { nameplate + "-" + $0 }
    }

    /// Completions of the words part alone (after `NAMEPLATE-`): `PGPWordList.get_completions`.
    public static func wordCompletions(of prefix: String, wordCount: Int = 2) -> [String] {
        let count = prefix.reduce(0) { $0 + ($1 == "-" ? 1 : 0) }
        let list = WordList.words(forPosition: count)
        let lastPartial = prefix.split(separator: "-", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        let head = prefix.dropLast(lastPartial.count)
        var out = Set<String>()
        for word in list where word.hasPrefix(lastPartial) {
            var s = head + word
            if count + 1 < wordCount { s += "-" }
            out.insert(String(s))
        }
        return out.sorted()
    }
}
