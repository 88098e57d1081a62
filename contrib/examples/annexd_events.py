#!/usr/bin/env python3
"""annexd_events.py: follow annexd's events, Python standard library only.

Connects to annexd's unix socket, calls daemon.status, then events.subscribe and prints
each event as it arrives, one line each:  ID TYPE key=value ...   (--json: the raw params).
  --since N   replay the events after N first (from the daemon's ring buffer)
  --types T   only these event types (repeatable)
  --socket P  the socket (default: $ANNEXD_SOCKET, else $XDG_RUNTIME_DIR/annexd/rpc.sock)
When the daemon says this client fell behind (event.overflow), it resubscribes from where
it says to resume, so no event is silently lost.
"""
import argparse, itertools, json, os, socket, sys


class AnnexdClient:
    """JSON-RPC 2.0 over a unix socket, one JSON text per line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.ids = itertools.count(1)
        self.pending = []  # notifications read while waiting for a reply

    def send(self, method, params=None):
        msg = {"jsonrpc": "2.0", "id": next(self.ids), "method": method}
        if params is not None:
            msg["params"] = params
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return msg["id"]

    def read(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("annexd closed the connection")
        return json.loads(line)

    def call(self, method, params=None):
        rid = self.send(method, params)
        while True:
            msg = self.read()
            if "id" not in msg:
                self.pending.append(msg)
            elif msg["id"] == rid:
                if "error" in msg:
                    e = msg["error"]
                    raise RuntimeError("%s: %s (%s)" % (method, e["message"], (e.get("data") or {}).get("reason", e["code"])))
                return msg["result"]

    def notifications(self):
        while True:
            while self.pending:
                yield self.pending.pop(0)
            yield self.read()


def default_socket():
    if os.environ.get("ANNEXD_SOCKET"):
        return os.environ["ANNEXD_SOCKET"]
    runtime = os.environ.get("XDG_RUNTIME_DIR") or "/tmp/annexd-%d" % os.getuid()
    return os.path.join(runtime, "annexd", "rpc.sock")


def main():
    ap = argparse.ArgumentParser(description="Print annexd's events as they happen.")
    ap.add_argument("--socket", default=default_socket())
    ap.add_argument("--since", type=int, help="replay events after this id first")
    ap.add_argument("--types", action="append", help="only this event type (repeatable)")
    ap.add_argument("--json", action="store_true", help="print each event as JSON")
    args = ap.parse_args()
    try:
        c = AnnexdClient(args.socket)
    except OSError as e:
        sys.exit("annexd_events: annexd is not answering on %s: %s (start it: systemctl --user start annexd)" % (args.socket, e.strerror))

    status = c.call("daemon.status")
    print("# annexd %s pid %d, boot %s, latest event %d" % (status["version"], status["pid"], status["boot"], status["latest_event"]), flush=True)

    def subscribe(since):
        params = {}
        if since is not None:
            params["since"] = since
        if args.types:
            params["types"] = args.types
        return c.call("events.subscribe", params)

    sub = subscribe(args.since)
    print("# subscribed, boot %s, latest %d" % (sub["boot"], sub["latest"]), flush=True)
    for msg in c.notifications():
        p = msg.get("params") or {}
        if msg.get("method") == "event.overflow":
            print("# fell behind: resuming from %d" % p["resume_from"], file=sys.stderr, flush=True)
            subscribe(p["resume_from"])
            continue
        if msg.get("method") != "event":
            continue
        if args.json:
            print(json.dumps(p, sort_keys=True), flush=True)
            continue
        rest = " ".join("%s=%s" % (k, json.dumps(v) if isinstance(v, (dict, list)) else v)
                        for k, v in sorted(p.items()) if k not in ("id", "type", "boot", "time"))
        print("%d %s %s" % (p.get("id", 0), p.get("type", "?"), rest), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except (ConnectionError, RuntimeError) as e:
        sys.exit("annexd_events: %s" % e)
