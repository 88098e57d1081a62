#!/usr/bin/env python3
"""Parse transcripts (format v1, see README.md) and check them for consistency.

  check_transcripts.py FILE.transcript...

Reconstructs both byte streams of every transcript, checks that each DATA
payload has the announced length (unless marked truncated), and that payloads
of a whole-object transfer (`GET 0 ...` answered with DATA of the key's size,
or `PUT`) hash to the key's SHA-256.  Prints one line per file; exits 1 on any
problem.  Also usable as a reference parser: see parse().
"""
import base64
import hashlib
import re
import sys


def parse(path):
    """Returns (header dict, list of events).  Events are tuples:
    ('line', d, bytes) | ('data', d, announced, payload_bytes) | ('partial', d, bytes)
    | ('eof', d) | ('stderr', text), with d in 'C'/'S'."""
    headers, events = {}, []
    pending = {}  # d -> [announced, bytearray]
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    assert lines[0] == b"# annexd-p2p-transcript v1", "bad first line"
    assert lines[-1] == b"", "no final newline"
    for raw in lines[1:-1]:
        if raw.startswith(b"# "):
            k, _, v = raw[2:].decode("utf-8", "replace").partition(": ")
            headers.setdefault(k, v)
            continue
        tag, val = raw[:2], raw[3:]
        if raw[2:3] != b" ":
            raise ValueError(f"bad record {raw[:40]!r}")
        d, kind = chr(tag[0]), chr(tag[1])
        if d == "E" and kind == ":":
            events.append(("stderr", val.decode("utf-8", "replace")))
            continue
        if d not in "CS":
            raise ValueError(f"bad direction {raw[:40]!r}")
        if kind in ":%":
            line = val if kind == ":" else base64.b64decode(val)
            events.append(("line", d, line))
            m = re.fullmatch(rb"DATA (\d+)", line)
            if m:
                pending[d] = [int(m.group(1)), bytearray()]
        elif kind == "+":
            pending[d][1] += base64.b64decode(val)
        elif kind == "=":
            n, buf = pending.pop(d)
            if int(val) != len(buf):
                raise ValueError(f"{d}= {int(val)} but {len(buf)} payload bytes")
            events.append(("data", d, n, bytes(buf)))
        elif kind == "~":
            events.append(("partial", d, base64.b64decode(val)))
        elif kind == ".":
            events.append(("eof", d))
        else:
            raise ValueError(f"bad record {raw[:40]!r}")
    return headers, events


def stream(events, d):
    out = bytearray()
    for e in events:
        if e[0] == "line" and e[1] == d:
            out += e[2] + b"\n"
        elif e[0] == "data" and e[1] == d:
            out += e[3]
        elif e[0] == "partial" and e[1] == d:
            out += e[2]
    return bytes(out)


def check(path):
    headers, events = parse(path)
    notes = []
    last_req = None
    truncated = any("truncated" in k for k in headers)
    for e in events:
        if e[0] == "line":
            if re.match(rb"(GET 0|PUT) ", e[2]):
                last_req = e[2]
            elif e[2] in (b"SUCCESS", b"FAILURE"):
                last_req = None
        if e[0] == "data":
            _, d, n, payload = e
            if n != len(payload) and not truncated:
                raise ValueError(f"DATA {n} but {len(payload)} bytes, not marked truncated")
            if last_req and n == len(payload) and n > 0:
                key = last_req.split(b" ")[-1].decode()
                m = re.fullmatch(r"SHA256E?-s(\d+)--([0-9a-f]{64})(\..*)?", key)
                if m and int(m.group(1)) == n:
                    ok = hashlib.sha256(payload).hexdigest() == m.group(2)
                    notes.append(f"{key[:24]}… {'sha256 ok' if ok else 'SHA256 MISMATCH'}")
    c, s = stream(events, "C"), stream(events, "S")
    return f"{len(events)} events, C {len(c)} bytes, S {len(s)} bytes" + (
        "; " + "; ".join(notes) if notes else "")


def main():
    bad = 0
    for p in sys.argv[1:]:
        try:
            print(f"{p}: {check(p)}")
        except Exception as ex:  # noqa: BLE001
            bad += 1
            print(f"{p}: ERROR {ex}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
