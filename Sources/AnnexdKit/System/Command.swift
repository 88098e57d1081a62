import Foundation

/// Runs short-lived helper programs (git, git-annex) and captures their output.
public enum Command {
    public struct Failure: Error, CustomStringConvertible {
        public let command: [String]
        public let status: Int32
        public let stderr: String
        public var description: String {
            let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return "\(command.joined(separator: " ")) exited with status \(status)" + (err.isEmpty ? "" : ": \(err)")
        }
    }

    public struct Output {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Runs `args[0]` (looked up in PATH) with the rest as arguments.
    public static func run(_ args: [String], cwd: String? = nil, environment: [String: String]? = nil,
                           stdin: Data? = nil) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = stdin == nil ? FileHandle.nullDevice : inp
        try p.run()
        if let stdin {
            inp.fileHandleForWriting.write(stdin)
            try? inp.fileHandleForWriting.close()
        }
        // Drain stderr concurrently so a chatty child cannot block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let errReader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        errReader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errReader.isFinished { usleep(1000) }
        return Output(status: p.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs and returns stdout, throwing `Failure` on a non-zero exit.
    @discardableResult
    public static func output(_ args: [String], cwd: String? = nil) throws -> String {
        let r = try run(args, cwd: cwd)
        guard r.status == 0 else { throw Failure(command: args, status: r.status, stderr: r.stderr) }
        return r.stdout
    }
}
