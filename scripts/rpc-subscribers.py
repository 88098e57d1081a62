#!/usr/bin/env python3
"""N event subscribers on annexd's socket for SECONDS (scripts/bench-load).

Every STALLED-th client subscribes and then reads nothing until the end; the others read as
events come and check that ids have no gap. At the end the stalled ones read what is waiting:
events in order, then at most one event.overflow. Prints one JSON object.

usage: rpc-subscribers.py SOCKET N SECONDS [STALLED_EVERY]
"""
import json
import resource
import selectors
import socket
import sys
import time


def main():
    path, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    every = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    clients = []
    for i in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"events.subscribe"}\n')
        c = {"sock": s, "stalled": i % every == every - 1, "buf": b"", "ids": [], "gaps": 0, "overflows": 0}
        clients.append(c)
        if not c["stalled"]:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, c)

    def take(c, data):
        c["buf"] += data
        *lines, c["buf"] = c["buf"].split(b"\n")
        for line in lines:
            m = json.loads(line)
            if m.get("method") == "event":
                i = m["params"]["id"]
                if c["ids"] and i != c["ids"][-1] + 1:
                    c["gaps"] += 1
                c["ids"].append(i)
            elif m.get("method") == "event.overflow":
                c["overflows"] += 1

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            try:
                data = key.fileobj.recv(1 << 16)
            except BlockingIOError:
                continue
            if data:
                take(key.data, data)
    # Drain the fast readers, then let the stalled ones read at last.
    quiet = time.monotonic() + 1
    while time.monotonic() < quiet:
        for key, _ in sel.select(timeout=0.2):
            data = key.fileobj.recv(1 << 16)
            if data:
                take(key.data, data)
                quiet = time.monotonic() + 1
    for c in clients:
        if c["stalled"]:
            c["sock"].settimeout(1)
            try:
                while True:
                    data = c["sock"].recv(1 << 16)
                    if not data:
                        break
                    take(c, data)
            except socket.timeout:
                pass
    fast = [c for c in clients if not c["stalled"]]
    stalled = [c for c in clients if c["stalled"]]
    out = {
        "clients": n, "stalled": len(stalled),
        "fast_events_min": min((len(c["ids"]) for c in fast), default=0),
        "fast_events_max": max((len(c["ids"]) for c in fast), default=0),
        "fast_gaps": sum(c["gaps"] for c in fast), "fast_overflows": sum(c["overflows"] for c in fast),
        "stalled_events_max": max((len(c["ids"]) for c in stalled), default=0),
        "stalled_gaps": sum(c["gaps"] for c in stalled),
        "stalled_overflowed": sum(1 for c in stalled if c["overflows"]),
        "latest_seen": max((c["ids"][-1] for c in clients if c["ids"]), default=0),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
