#if canImport(Glibc)
import Glibc
#endif
import TorrcKit

/// The helper must be started by root (pkexec, su, sudo), never gain root by itself.
enum Privilege {
    static let setuidBits: mode_t = 0o4000 | 0o2000

    /// Refuses when real and effective ids differ (a setuid/setgid start), and when the
    /// executable file itself carries the setuid or setgid bit (even if root ran it).
    static func refuseSetuid() throws(HelperFailure) {
        if getuid() != geteuid() || getgid() != getegid() {
            throw HelperFailure(.setuidRefused,
                                "refusing to run setuid/setgid (uid \(getuid()), euid \(geteuid())); run it through pkexec, su or sudo")
        }
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else {
            throw HelperFailure(.setuidRefused, "cannot check my own file mode (/proc/self/exe: \(errnoText()))")
        }
        if st.st_mode & setuidBits != 0 {
            throw HelperFailure(.setuidRefused,
                                "refusing to run: this binary has the setuid/setgid bit; remove it (chmod u-s,g-s) and use pkexec")
        }
    }

    /// Under pkexec, the uid to act for must be the uid that asked (PKEXEC_UID).
    static func checkPkexecUID(_ uid: UInt32?) throws(HelperFailure) {
        guard let uid, let caller = getenv("PKEXEC_UID").map({ String(cString: $0) }) else { return }
        guard caller == String(uid) else {
            throw .invalid("--uid \(uid) is not the uid that ran pkexec (\(caller))")
        }
    }
}
