import Foundation
import Testing

/// contrib/python/annexd_client.py: its own unittest file (contrib/python/tests), which starts
/// real annexd daemons (this build's) to check call, batch, errors, the not-running error, and
/// event resume after a dropped connection and after an annexd restart.
@Suite(.timeLimit(minutes: 10)) struct PythonClientTests {
    @Test func clientTestsPassAgainstARealAnnexd() throws {
        let dir = TestEnvironment.packageRoot + "/contrib/python/tests"
        let r = try DaemonProcess.run(["python3", "-m", "unittest", "discover", "-s", dir, "-v"],
                                      env: ["ANNEXD": TestEnvironment.annexd, "PYTHONDONTWRITEBYTECODE": "1"],
                                      cwd: dir, timeout: 300)
        #expect(r.status == 0, "python3 -m unittest failed (\(r.status)):\n\(r.stdout)\n\(r.stderr)")
        // unittest reports on stderr; every test ran (none skipped, none missing).
        #expect(r.stderr.contains("OK") && !r.stderr.contains("skipped"), "\(r.stderr)")
        let ran = r.stderr.split(separator: "\n").first { $0.hasPrefix("Ran ") } ?? ""
        #expect(ran.hasPrefix("Ran 9 tests"), "\(r.stderr)")
    }
}
