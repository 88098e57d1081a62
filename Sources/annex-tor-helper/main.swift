#if canImport(Glibc)
import Glibc
#endif
import TorrcKit

// annex-tor-helper: the one privileged piece of annexd. See `annex-tor-helper --help`.

umask(0o022)

do throws(HelperFailure) {
    try Privilege.refuseSetuid()
} catch {
    Output.fail(error, action: nil)
}

let invocation: HelperInvocation
do throws(HelperFailure) {
    invocation = try HelperInvocation.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    let action = CommandLine.arguments.dropFirst().first.flatMap(HelperCommand.init(rawValue:))
    Output.fail(error, action: action)
}

guard case .run(let options) = invocation else {
    print(HelperInvocation.usageText)
    exit(0)
}

do throws(HelperFailure) {
    try Privilege.checkPkexecUID(options.uid)
    let file = try TorrcFile(path: options.torrc)
    let tor = try Tor(options: options)
    Output.succeed(try Commands(options: options, file: file, tor: tor).run())
} catch {
    Output.fail(error, action: options.command)
}
