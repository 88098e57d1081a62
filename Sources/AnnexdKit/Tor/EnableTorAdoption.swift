#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared
import TorrcKit

/// A repository that `git annex enable-tor` (or annex-tor-helper) set up in the
/// system torrc: system tor publishes its onion and forwards it to a unix socket
/// that git-annex's remotedaemon would listen on. annexd adopts it: it listens
/// on that socket itself and reports that address, so peers that already have
/// it keep working with no change.
public struct EnableTorService: Sendable, Equatable {
    public var onion: String
    public var port: Int
    public var socket: String

    /// Finds `uuid`'s enable-tor service for user `uid` in `torrc` (text), with its
    /// address from the repository's creds/p2paddrs (enable-tor writes it there:
    /// tor's hostname file is readable by tor's user only).
    public static func find(uuid: String, uid: UInt32, torrc: String, p2paddrs: String) -> EnableTorService? {
        let ident = "\(uid)_\(uuid)"
        let model = Torrc(text: torrc)
        for block in model.hiddenServices {
            let dirMatches = (block.directory.split(separator: "/").last.map(String.init) ?? "") == "\(EnableTorLayout.appName)_\(ident)"
            for port in block.ports {
                guard let socket = port.unixSocket, let virtual = port.virtualPort,
                      dirMatches || socket.contains("/\(ident)/") else { continue }
                // The address enable-tor recorded for this port.
                for line in p2paddrs.split(separator: "\n") {
                    guard let address = try? TorAnnexAddress(parsing: String(line), token: .forbidden), address.port == virtual else { continue }
                    return EnableTorService(onion: address.onion, port: virtual, socket: socket)
                }
            }
        }
        return nil
    }
}
