#!/usr/bin/env python3
"""A P2P peer that misbehaves mid-DATA, for fault-injection tests only.

usage: fault-peer.py LISTEN_SOCKET TARGET_SOCKET MODE ARG TIMES
    Listens on the unix socket LISTEN_SOCKET and relays each connection to TARGET_SOCKET (a
    real annexd serving the repository), so AUTH, VERSION and the content come from the real
    peer. The first TIMES non-empty DATA messages from the peer are tampered
    with; everything after passes unchanged. MODE:
      more K     announces K bytes fewer than it then sends ("DATA n-K", n bytes)
      fewer K    announces K bytes more than it then sends ("DATA n+K", n bytes, then on
                 with the protocol, so the receiver waits for bytes that never come)
      corrupt 0  flips one byte in the middle of the content
      cut N      passes N bytes of the content, then closes both ends
    Prints "ready" on stdout once listening, and "fault" (flushed) each time it tampers.
"""
import os, socket, sys, threading

listen_path, target_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
arg, budget = int(sys.argv[4]), [int(sys.argv[5])]
lock = threading.Lock()


def take_fault():
    with lock:
        if budget[0] <= 0:
            return False
        budget[0] -= 1
    print("fault", flush=True)
    return True


def close_both(a, b):
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def upstream(client, server):
    """client -> server, unchanged."""
    try:
        while True:
            b = client.recv(65536)
            if not b:
                break
            server.sendall(b)
    except OSError:
        pass
    try:
        server.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def downstream(server, client):
    """server -> client: lines passed as they are, DATA bodies counted and tampered with."""
    buf = b""
    remaining = 0      # content bytes of the current DATA still to pass
    faulty = False     # tampering with the current DATA
    passed = 0         # content bytes of the current DATA passed so far
    length = 0
    try:
        while True:
            chunk = server.recv(65536)
            if not chunk:
                break
            buf += chunk
            out = b""
            while buf:
                if remaining > 0:
                    body, buf = buf[:remaining], buf[remaining:]
                    if faulty and mode == "corrupt" and passed <= length // 2 < passed + len(body):
                        i = length // 2 - passed
                        body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]
                    if faulty and mode == "cut" and passed + len(body) >= arg:
                        client.sendall(out + body[:arg - passed])
                        close_both(server, client)
                        return
                    remaining -= len(body)
                    passed += len(body)
                    out += body
                    continue
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line, buf = buf[:nl + 1], buf[nl + 1:]
                if line.startswith(b"DATA "):
                    length = int(line[5:].strip())
                    remaining, passed = length, 0
                    faulty = length > 0 and take_fault()
                    if faulty and mode == "more":
                        line = b"DATA %d\n" % (length - arg)
                    elif faulty and mode == "fewer":
                        line = b"DATA %d\n" % (length + arg)
                out += line
            client.sendall(out)
    except OSError:
        pass
    try:
        client.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(client):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.connect(target_path)
    except OSError:
        client.close()
        return
    threading.Thread(target=upstream, args=(client, server), daemon=True).start()
    downstream(server, client)


def main():
    try:
        os.unlink(listen_path)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(listen_path)
    ls.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


main()
