/// Everything that can go wrong talking to tor's control port, from a refused command to an
/// unreadable cookie file. Each case's `description` says what happened and what to do.
///
/// The codec (parser, builders, reply parsers) throws the protocol and argument cases; the
/// client in AnnexdKit adds the connection and authentication cases.
public enum TorControlError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: Tor said no

    /// Tor answered `command` (its keyword, e.g. "ADD_ONION") with a non-2xx status.
    case rejected(command: String, code: Int, message: String)

    // MARK: The byte stream

    /// A reply line longer than the parser's bound (the connection is out of step or not tor's).
    case lineTooLong(limit: Int)
    /// One reply (all its lines and data) larger than the parser's bound.
    case replyTooLarge(limit: Int)
    /// Something that is not the control protocol: a line without a status code, mixed codes, ...
    case protocolViolation(String)
    /// A reply tor sent whose content does not have the documented shape (e.g. no ServiceID).
    case unexpectedReply(command: String, reply: String)

    // MARK: Arguments we refused to send

    /// A command argument that would break the line protocol or that tor would misread.
    case invalidArgument(String)

    // MARK: Authentication

    /// The cookie file named by PROTOCOLINFO (or given) cannot be read.
    case cookieUnreadable(path: String, reason: String)
    /// The cookie file is not 32 bytes.
    case badCookieLength(path: String, length: Int)
    /// Tor's SAFECOOKIE server hash did not match the cookie: it is not the tor that wrote the cookie.
    case serverHashMismatch(cookiePath: String)
    /// Tor refused our credentials for `method`.
    case authenticationFailed(method: String, message: String)
    /// Tor only accepts a password (HASHEDPASSWORD) and none was given.
    case passwordRequired
    /// None of tor's methods is one annexd can use (or the one asked for is not offered).
    case noUsableAuthMethod(offered: [String])

    // MARK: The connection

    /// Connecting to the control port failed.
    case connectFailed(endpoint: String, reason: String)
    /// The control connection closed (tor exited, or closed it after an error) before a reply.
    case connectionClosed

    public var description: String {
        switch self {
        case .rejected(let command, let code, let message):
            return "tor refused \(command) with \(code) \(message)" + Self.hint(command: command, code: code, message: message)
        case .lineTooLong(let limit):
            return "tor's control connection sent a line longer than \(limit) bytes; closing it (is the endpoint really tor's control port?)"
        case .replyTooLarge(let limit):
            return "tor's control connection sent a reply larger than \(limit) bytes; closing it (ask for less, e.g. fewer GETINFO keys)"
        case .protocolViolation(let what):
            return "not the tor control protocol: \(what) (is the endpoint really tor's control port?)"
        case .unexpectedReply(let command, let reply):
            return "tor's reply to \(command) does not have the documented form: \(reply)"
        case .invalidArgument(let what):
            return "invalid tor control command argument: \(what)"
        case .cookieUnreadable(let path, let reason):
            return "cannot read tor's control auth cookie \(path): \(reason). "
                + "For the system tor, add your user to tor's group (Debian: `sudo adduser $USER debian-tor`, then log in again) "
                + "and make sure torrc has `CookieAuthFileGroupReadable 1`; or point annexd at a control port it can authenticate to"
        case .badCookieLength(let path, let length):
            return "tor's control auth cookie \(path) has \(length) bytes, not 32: it is not a tor cookie file (wrong CookieAuthFile?)"
        case .serverHashMismatch(let path):
            return "tor's SAFECOOKIE answer does not match the cookie in \(path): the control port belongs to a different tor "
                + "than the one that wrote this cookie (or the cookie is stale); check the control port and CookieAuthFile"
        case .authenticationFailed(let method, let message):
            let hint = method == "HASHEDPASSWORD"
                ? " (the password does not match torrc's HashedControlPassword; make a new hash with `tor --hash-password`)"
                : " (tor may have restarted and written a new cookie; try again)"
            return "tor refused \(method) authentication: \(message)" + hint
        case .passwordRequired:
            return "tor's control port accepts only a password (HASHEDPASSWORD) and none was given; "
                + "pass the control password, or enable CookieAuthentication 1 in torrc"
        case .noUsableAuthMethod(let offered):
            return "tor offers no control authentication method annexd can use (offered: \(offered.isEmpty ? "none" : offered.joined(separator: ", "))); "
                + "enable CookieAuthentication 1 in torrc"
        case .connectFailed(let endpoint, let reason):
            return "cannot connect to tor's control port at \(endpoint): \(reason); is tor running with ControlSocket/ControlPort set, "
                + "and may this user open it (for /run/tor/control: group debian-tor)?"
        case .connectionClosed:
            return "tor's control connection closed (tor exited, restarted, or closed it after an error); reconnect"
        }
    }

    private static func hint(command: String, code: Int, message: String) -> String {
        switch (command, code) {
        case ("ADD_ONION", 550):
            return " (this onion service is already running in this tor: DEL_ONION it first, or keep using it)"
        case ("DEL_ONION", 552):
            return " (no such onion service on this connection: it was never added, already removed, or added by another control connection without Flags=Detach)"
        case (_, 514):
            return " (authenticate first)"
        case (_, 510):
            return " (this tor does not know the command; is it too old?)"
        case ("SETEVENTS", 552), ("GETINFO", 552), ("SIGNAL", 552):
            return " (this tor does not know that name; is it too old or misspelled?)"
        default:
            return ""
        }
    }
}
