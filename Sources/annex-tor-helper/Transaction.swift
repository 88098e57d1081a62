#if canImport(Glibc)
import Glibc
#endif
import TorrcKit

/// One torrc change, all or nothing: write a temp file, verify it with tor, back up the
/// torrc, rename the temp file over it, reload tor, wait until `ready`. A failure before the
/// rename leaves the torrc untouched; a failure after it restores the original bytes and
/// reloads tor again.
struct Transaction {
    let file: TorrcFile
    let tor: Tor
    let timeout: Int

    func commit(_ new: Torrc, undo: () -> Void, waitingFor what: String, ready: () -> Bool) throws(HelperFailure) {
        let temp: String
        do throws(HelperFailure) {
            temp = try file.writeTemp(new.render())
        } catch {
            undo(); throw error
        }
        do throws(HelperFailure) {
            try tor.verify(temp)
            try file.writeBackup()
            try file.install(temp, as: file.path)
        } catch {
            unlink(temp)
            undo()
            throw error
        }
        do throws(HelperFailure) {
            try tor.reloadNow()
            guard Tor.wait(seconds: timeout, { ready() ? true : nil }) != nil else {
                throw HelperFailure(.timeout, "tor did not create \(what) within \(timeout) s after reloading")
            }
        } catch {
            throw rollback(error, undo: undo)
        }
    }

    /// Puts the original torrc back, undoes the directory set-up, reloads tor again.
    func rollback(_ failure: HelperFailure, undo: () -> Void) -> HelperFailure {
        do throws(HelperFailure) {
            try file.restoreOriginal()
        } catch {
            return HelperFailure(.rollbackFailed, "\(failure.message); restoring the torrc failed too (\(error.message)); "
                                 + "the previous torrc is in \(file.backupPath)")
        }
        undo()
        var message = failure.message + "; torrc restored"
        do throws(HelperFailure) {
            try tor.reloadNow()
            message += " and tor reloaded"
        } catch {
            message += ", but reloading tor again failed (\(error.message))"
        }
        return HelperFailure(failure.reason, message)
    }
}
