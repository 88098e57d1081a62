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
        let parts = socks.split(separator: ":")
        if tor != "none", parts.count == 2, let port = Int(parts[1]) {
            c.socks = SOCKSProxy(host: String(parts[0]), port: port)
        }
        return c
    }
}
