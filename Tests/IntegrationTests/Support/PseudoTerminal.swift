#if canImport(Glibc)
import Glibc
#endif
import CShims
import Foundation

/// Runs a program on a pseudo-terminal: its stdin, stdout and stderr are the terminal (so
/// `isatty` is true and the window has `columns` × `rows`), and everything it writes comes
/// back from the master side as one string (the terminal turns "\n" into "\r\n").
/// Bounded: the program is killed after `timeout`.
enum PseudoTerminal {
    struct Result {
        var status: Int32
        var output: String
    }

    static func run(_ args: [String], env: [String: String] = [:], cwd: String? = nil, columns: UInt16 = 100, rows: UInt16 = 30,
                    timeout: TimeInterval = DaemonProcess.defaultTimeout) throws -> Result {
        var master: Int32 = -1
        var slave: Int32 = -1
        let rc = annexd_open_pty(&master, &slave, columns, rows)
        guard rc == 0 else { throw DaemonProcess.Failure(description: "cannot open a pseudo-terminal: \(String(cString: strerror(rc)))") }
        defer { close(master) }
        let pid: Int32
        do {
            defer { close(slave) }
            pid = try DaemonProcess.spawn(args, env: env, cwd: cwd, stdin: slave, stdout: slave, stderr: slave)
        }
        var output: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        // Read until the last holder of the terminal's other side closes it (read fails with EIO).
        while true {
            let wait = deadline.timeIntervalSinceNow
            if wait <= 0 {
                kill(pid, SIGKILL)
                _ = DaemonProcess.waitForExit(pid: pid, timeout: 5)
                throw DaemonProcess.Failure(description: "\(args.joined(separator: " ")) did not finish within \(timeout) s; it wrote:\n"
                                            + String(decoding: output, as: UTF8.self))
            }
            var p = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(wait, 1) * 1000) + 1)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            if n > 0 { output.append(contentsOf: chunk[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        guard let status = DaemonProcess.waitForExit(pid: pid, timeout: max(1, deadline.timeIntervalSinceNow)) else {
            kill(pid, SIGKILL)
            _ = DaemonProcess.waitForExit(pid: pid, timeout: 5)
            throw DaemonProcess.Failure(description: "\(args.joined(separator: " ")) closed its terminal but did not exit")
        }
        return Result(status: status, output: String(decoding: output, as: UTF8.self))
    }
}
