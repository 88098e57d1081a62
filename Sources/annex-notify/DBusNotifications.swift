import CDBus
import ClientKit

/// The session bus's org.freedesktop.Notifications, through libdbus-1: a thin shell that
/// sends `Notify` (replaces_id, actions, urgency and category hints) and reports the
/// `ActionInvoked` and `NotificationClosed` signals. One thread: `poll(2)` its `fd`, then `signals()`.
final class DBusNotifications {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    enum Signal: Equatable {
        case actionInvoked(id: UInt32, key: String)
        case closed(id: UInt32, reason: UInt32)
    }

    static let service = "org.freedesktop.Notifications"
    static let path = "/org/freedesktop/Notifications"

    private let connection: OpaquePointer
    /// The server's capabilities (GetCapabilities): actions are sent only if it lists "actions".
    let capabilities: Set<String>

    init() throws {
        var error = DBusError()
        dbus_error_init(&error)
        guard let c = dbus_bus_get_private(DBUS_BUS_SESSION, &error) else {
            throw Failure(description: "cannot connect to the session bus: \(Self.message(&error)) (is DBUS_SESSION_BUS_ADDRESS set?)")
        }
        connection = c
        dbus_connection_set_exit_on_disconnect(c, 0)
        dbus_bus_add_match(c, "type='signal',interface='\(Self.service)'", &error)
        if dbus_error_is_set(&error) != 0 {
            throw Failure(description: "cannot listen to \(Self.service) signals: \(Self.message(&error))")
        }
        let reply = try Self.call(c, "GetCapabilities") { _ in }
        defer { dbus_message_unref(reply) }
        var iter = DBusMessageIter()
        var caps: Set<String> = []
        if dbus_message_iter_init(reply, &iter) != 0, dbus_message_iter_get_arg_type(&iter) == DBusType.array {
            var item = DBusMessageIter()
            dbus_message_iter_recurse(&iter, &item)
            while dbus_message_iter_get_arg_type(&item) == DBusType.string {
                caps.insert(Self.string(&item))
                dbus_message_iter_next(&item)
            }
        }
        capabilities = caps
    }

    deinit {
        dbus_connection_close(connection)
        dbus_connection_unref(connection)
    }

    /// The bus connection's descriptor, for poll(2).
    var fd: Int32 {
        var fd: Int32 = -1
        dbus_connection_get_unix_fd(connection, &fd)
        return fd
    }

    /// Notify: the id the server gave (the same as `replacesID` when that one was updated).
    func notify(_ intent: NotifyIntent, replacesID: UInt32) throws -> UInt32 {
        let actions = capabilities.contains("actions") ? intent.actions.flatMap { [$0.key, $0.label] } : []
        let reply = try Self.call(connection, "Notify") { iter in
            Self.append(&iter, "annexd")
            var replaces = replacesID
            dbus_message_iter_append_basic(&iter, DBusType.uint32, &replaces)
            Self.append(&iter, "")
            Self.append(&iter, intent.summary)
            Self.append(&iter, intent.body)
            Self.container(&iter, DBusType.array, "s") { a in actions.forEach { Self.append(&a, $0) } }
            Self.container(&iter, DBusType.array, "{sv}") { hints in
                Self.container(&hints, DBusType.dictEntry, nil) { entry in
                    Self.append(&entry, "urgency")
                    Self.container(&entry, DBusType.variant, "y") { v in
                        var byte = intent.urgency.rawValue
                        dbus_message_iter_append_basic(&v, DBusType.byte, &byte)
                    }
                }
                Self.container(&hints, DBusType.dictEntry, nil) { entry in
                    Self.append(&entry, "category")
                    Self.container(&entry, DBusType.variant, "s") { v in Self.append(&v, intent.category) }
                }
            }
            var expire: Int32 = -1
            dbus_message_iter_append_basic(&iter, DBusType.int32, &expire)
        }
        defer { dbus_message_unref(reply) }
        var iter = DBusMessageIter()
        var id: UInt32 = 0
        guard dbus_message_iter_init(reply, &iter) != 0, dbus_message_iter_get_arg_type(&iter) == DBusType.uint32 else {
            throw Failure(description: "Notify answered without an id")
        }
        dbus_message_iter_get_basic(&iter, &id)
        return id
    }

    /// Reads what the bus sent and returns the notification signals among it.
    func signals() throws -> [Signal] {
        guard dbus_connection_read_write(connection, 0) != 0 else { throw Failure(description: "the session bus went away") }
        var out: [Signal] = []
        while let m = dbus_connection_pop_message(connection) {
            defer { dbus_message_unref(m) }
            guard dbus_message_get_type(m) == DBUS_MESSAGE_TYPE_SIGNAL,
                  let iface = dbus_message_get_interface(m), String(cString: iface) == Self.service,
                  let member = dbus_message_get_member(m) else { continue }
            var iter = DBusMessageIter()
            guard dbus_message_iter_init(m, &iter) != 0, dbus_message_iter_get_arg_type(&iter) == DBusType.uint32 else { continue }
            var id: UInt32 = 0
            dbus_message_iter_get_basic(&iter, &id)
            dbus_message_iter_next(&iter)
            switch (String(cString: member), dbus_message_iter_get_arg_type(&iter)) {
            case ("ActionInvoked", DBusType.string): out.append(.actionInvoked(id: id, key: Self.string(&iter)))
            case ("NotificationClosed", DBusType.uint32):
                var reason: UInt32 = 0
                dbus_message_iter_get_basic(&iter, &reason)
                out.append(.closed(id: id, reason: reason))
            default: continue
            }
        }
        return out
    }

    // MARK: libdbus plumbing

    /// D-Bus type codes (libdbus's DBUS_TYPE_* macros are casts Swift does not import).
    enum DBusType {
        static let byte = Int32(UInt8(ascii: "y")), uint32 = Int32(UInt8(ascii: "u")), int32 = Int32(UInt8(ascii: "i"))
        static let string = Int32(UInt8(ascii: "s")), array = Int32(UInt8(ascii: "a")), variant = Int32(UInt8(ascii: "v"))
        static let dictEntry = Int32(UInt8(ascii: "e"))
    }

    /// Calls a method of the notification server and waits (5 s) for the reply.
    private static func call(_ c: OpaquePointer, _ method: String, _ args: (inout DBusMessageIter) -> Void) throws -> OpaquePointer {
        guard let m = dbus_message_new_method_call(service, path, service, method) else { throw Failure(description: "out of memory") }
        defer { dbus_message_unref(m) }
        var iter = DBusMessageIter()
        dbus_message_iter_init_append(m, &iter)
        args(&iter)
        var error = DBusError()
        dbus_error_init(&error)
        guard let reply = dbus_connection_send_with_reply_and_block(c, m, 5000, &error) else {
            throw Failure(description: "\(service).\(method) failed: \(message(&error))")
        }
        return reply
    }

    private static func append(_ iter: inout DBusMessageIter, _ s: String) {
        s.withCString { p in
            var ptr: UnsafePointer<CChar>? = p
            _ = dbus_message_iter_append_basic(&iter, DBusType.string, &ptr)
        }
    }

    private static func container(_ iter: inout DBusMessageIter, _ type: Int32, _ signature: String?,
                                  _ body: (inout DBusMessageIter) -> Void) {
        var sub = DBusMessageIter()
        if let signature {
            _ = signature.withCString { dbus_message_iter_open_container(&iter, type, $0, &sub) }
        } else {
            _ = dbus_message_iter_open_container(&iter, type, nil, &sub)
        }
        body(&sub)
        _ = dbus_message_iter_close_container(&iter, &sub)
    }

    private static func string(_ iter: inout DBusMessageIter) -> String {
        var p: UnsafePointer<CChar>?
        dbus_message_iter_get_basic(&iter, &p)
        return p.map { String(cString: $0) } ?? ""
    }

    private static func message(_ error: inout DBusError) -> String {
        defer { dbus_error_free(&error) }
        return error.message.map { String(cString: $0) } ?? "unknown error"
    }
}
