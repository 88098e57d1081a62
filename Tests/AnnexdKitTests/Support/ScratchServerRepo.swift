#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
@testable import AnnexdKit
import Shared
import TranscriptSupport

/// A scratch git-annex repository holding some of the recordings' files (annexed with
/// `git annex add`, so the keys are git-annex's own). Each is a copy of a template made
/// once per set of files; the templates go when the test process exits.
final class ScratchServerRepo {
    let dir: String
    let store: ObjectStore

    init(files: [String]) throws {
        let template = try Self.template(for: files.sorted())
        dir = try Self.makeTemporaryDirectory("annexd-replay")
        _ = try Command.output(["cp", "-a", template + "/.", dir])
        store = ObjectStore(repo: try AnnexRepo(path: dir))
    }

    deinit {
        store.log.close()
        Self.remove(dir)
    }

    private static let templates = Mutex<[[String]: String]>([:])
    private static let templateRoot: String = {
        let root = try! makeTemporaryDirectory("annexd-replay-templates")
        atexit { ScratchServerRepo.remove(ScratchServerRepo.templateRoot) }
        return root
    }()

    private static func template(for files: [String]) throws -> String {
        try templates.withLock { cache in
            if let dir = cache[files] { return dir }
            let dir = templateRoot + "/" + (files.isEmpty ? "empty" : files.joined(separator: "+"))
            _ = try Command.output(["git", "init", "-q", dir])
            _ = try Command.output(["git", "annex", "init", "-q", "replay-server"], cwd: dir)
            for f in files {
                guard FileManager.default.createFile(atPath: dir + "/" + f, contents: Data(Content.bytes(f))) else {
                    throw SystemError("create", path: dir + "/" + f)
                }
            }
            if !files.isEmpty { _ = try Command.output(["git", "annex", "add", "--quiet", "--"] + files, cwd: dir) }
            cache[files] = dir
            return dir
        }
    }

    private static func makeTemporaryDirectory(_ prefix: String) throws -> String {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError("mkdtemp")
        }
        return String(cString: p)
    }

    /// Annexed content lives in read-only directories.
    private static func remove(_ dir: String) {
        _ = try? Command.run(["chmod", "-R", "u+w", dir])
        try? FileManager.default.removeItem(atPath: dir)
    }
}
