import Foundation
import Testing
import FuzzTargets

/// Every committed input of fuzz/corpus/<target>/ (seeds, and the reproducers of crashes
/// found and fixed) run once through its fuzz target, without the sanitizer build.
@Suite struct FuzzCorpusTests {
    static let corpusRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz/corpus")

    static func inputs(_ target: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: corpusRoot.appendingPathComponent(target), includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test func everyCorpusDirectoryHasATarget() throws {
        let dirs = try FileManager.default.contentsOfDirectory(atPath: Self.corpusRoot.path).filter { !$0.hasPrefix(".") }
        #expect(Set(dirs) == Set(FuzzTargets.all.map(\.name)))
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func corpusRunsClean(target name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let files = try Self.inputs(name)
        #expect(!files.isEmpty, "fuzz/corpus/\(name) is empty")
        for file in files {
            do {
                try target.run(Array(try Data(contentsOf: file)))
            } catch {
                Issue.record("\(name)/\(file.lastPathComponent): \(error)")
            }
        }
    }
}
