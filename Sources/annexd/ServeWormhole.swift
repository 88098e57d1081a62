import AnnexdKit
import ArgumentParser
import Foundation
import Shared

extension Serve {
    /// Mailbox and transit relay for pairing: the flags, else the environment variables the
    /// Python CLI reads (WORMHOLE_RELAY_URL, WORMHOLE_TRANSIT_HELPER), else the public servers.
    /// With tor (any --tor but none) mailbox and transit go through the SOCKS port.
    func wormholeConfiguration() throws -> Wormhole.Configuration {
        var env = ProcessInfo.processInfo.environment
        if let wormholeRelayUrl { env["WORMHOLE_RELAY_URL"] = wormholeRelayUrl }
        if let wormholeTransitHelper { env["WORMHOLE_TRANSIT_HELPER"] = wormholeTransitHelper }
        var c: Wormhole.Configuration
        do { c = try Wormhole.Configuration.fromEnvironment(env, appID: Wormhole.gitAnnexAppID) } catch {
            throw ValidationError("\(error) (--wormhole-relay-url, --wormhole-transit-helper or WORMHOLE_RELAY_URL, WORMHOLE_TRANSIT_HELPER)")
        }
        // With tor in use, pairing traffic goes through a SOCKS port too: --socks if given,
        // else the tor annexd uses (Daemon.pairingConfiguration fills it in at pairing time).
        if tor != "none", let socks, let hp = Self.hostPort(socks) {
            c.socks = SOCKSProxy(host: hp.host, port: hp.port)
        }
        return c
    }
}
