import FuzzTargets
import Foundation

/// annexd's libFuzzer executable: `ANNEXD_FUZZ_TARGET=<name> annexd-fuzz [libFuzzer flags] [corpus dirs]`.
/// Built by `make fuzz` (address sanitizer, coverage, -DANNEXD_FUZZ, libFuzzer linked);
/// an ordinary build makes a stub that says so.
@main enum FuzzMain {
    static func main() {
        #if ANNEXD_FUZZ
        let name = ProcessInfo.processInfo.environment["ANNEXD_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTargets.named(name) else {
            FileHandle.standardError.write(Data("ANNEXD_FUZZ_TARGET must be one of: \(FuzzTargets.all.map(\.name).joined(separator: " "))\n".utf8))
            exit(2)
        }
        FuzzDriver.run(target)
        #else
        FileHandle.standardError.write(Data("annexd-fuzz is built for fuzzing by `make fuzz` only (targets: \(FuzzTargets.all.map(\.name).joined(separator: " ")))\n".utf8))
        exit(2)
        #endif
    }
}

#if ANNEXD_FUZZ
import CFuzzerDriver

enum FuzzDriver {
    nonisolated(unsafe) static var target: FuzzTarget?

    static func run(_ target: FuzzTarget) -> Never {
        Self.target = target
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            do {
                try FuzzDriver.target!.run(UnsafeRawBufferPointer(start: data, count: size))
            } catch {
                fatalError("\(FuzzDriver.target!.name): \(error)")
            }
            return 0
        })
    }
}
#endif
