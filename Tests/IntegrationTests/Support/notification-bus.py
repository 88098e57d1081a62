#!/usr/bin/python3
"""The recording notification server's side of NotifierTests (python3-dbusmock's
notification_daemon template on the session bus in DBUS_SESSION_BUS_ADDRESS).

  notification-bus.py calls            the Notify calls so far, as JSON lines:
                                       {"replaces_id", "summary", "body", "actions", "hints"}
  notification-bus.py invoke ID KEY    emits ActionInvoked(ID, KEY), as a person clicking would
"""
import json
import sys

import dbus

bus = dbus.SessionBus()
obj = bus.get_object("org.freedesktop.Notifications", "/org/freedesktop/Notifications")
mock = dbus.Interface(obj, "org.freedesktop.DBus.Mock")

if sys.argv[1] == "calls":
    for _, method, args in mock.GetCalls():
        if method != "Notify":
            continue
        print(json.dumps({"app_name": str(args[0]), "replaces_id": int(args[1]), "summary": str(args[3]),
                          "body": str(args[4]), "actions": [str(a) for a in args[5]],
                          "hints": {str(k): (str(v) if isinstance(v, dbus.String) else int(v)) for k, v in args[6].items()}}))
elif sys.argv[1] == "invoke":
    mock.EmitSignal("", "ActionInvoked", "us", [dbus.UInt32(int(sys.argv[2])), sys.argv[3]])
else:
    sys.exit("usage: notification-bus.py calls | invoke ID KEY")
