#!/usr/bin/env python3
"""annexd_events.py: follow annexd's events, Python standard library only.

Uses contrib/python/annexd_client.py (copy it beside this script, or set PYTHONPATH).
Calls daemon.status, then follows the events, printing one line each:
  ID TYPE key=value ...   (--json: the raw params)
  --since N   replay the events after N first (from the daemon's ring buffer)
  --types T   only these event types (repeatable)
  --socket P  the socket (default: $ANNEXD_SOCKET, else $XDG_RUNTIME_DIR/annexd/rpc.sock)
It resumes where it was when annexd drops the connection or says this client fell behind
(event.overflow), so no event is silently lost; it says so when annexd restarted.
"""
import argparse, json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import annexd_client as annexd  # noqa: E402


def line(p):
    rest = " ".join("%s=%s" % (k, json.dumps(v) if isinstance(v, (dict, list)) else v)
                    for k, v in sorted(p.items()) if k not in ("id", "type", "boot", "time"))
    return "%d %s %s" % (p.get("id", 0), p.get("type", "?"), rest)


def main():
    ap = argparse.ArgumentParser(description="Print annexd's events as they happen.")
    ap.add_argument("--socket", default=annexd.default_socket())
    ap.add_argument("--since", type=int, help="replay events after this id first")
    ap.add_argument("--types", action="append", help="only this event type (repeatable)")
    ap.add_argument("--json", action="store_true", help="print each event as JSON")
    args = ap.parse_args()

    with annexd.connect(args.socket) as c:
        s = c.call("daemon.status")
    print("# annexd %s pid %d, boot %s, latest event %d" % (s["version"], s["pid"], s["boot"], s["latest_event"]), flush=True)

    def subscribed(sub):
        print("# subscribed, boot %s, latest %d" % (sub["boot"], sub["latest"]), flush=True)

    stream = annexd.events(args.socket, since=args.since, boot=s["boot"] if args.since is not None else None,
                           types=args.types, on_subscribe=subscribed)
    for ev in stream:
        if isinstance(ev, annexd.Restarted):
            print("# annexd restarted (boot %s): event ids start again" % ev.new_boot, file=sys.stderr, flush=True)
        elif isinstance(ev, annexd.Missed):
            print("# missed events %d to %d (annexd no longer keeps them)" % (ev.after + 1, ev.until), file=sys.stderr, flush=True)
        elif args.json:
            print(json.dumps(ev, sort_keys=True), flush=True)
        else:
            print(line(ev), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except annexd.AnnexdError as e:
        sys.exit("annexd_events: %s" % e)
