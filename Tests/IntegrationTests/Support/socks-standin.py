#!/usr/bin/env python3
"""A SOCKS5 server standing in for tor in tests (no authentication, CONNECT only).

usage: socks-standin.py LISTEN_HOST LISTEN_PORT MAPFILE
    onion mode: CONNECT to NAME:PORT is relayed to the unix socket MAP[NAME:PORT];
    anything else is refused (host unreachable), as tor refuses an unknown onion.
    MAPFILE lines: `<name>:<port> <unix socket path> [latency ms]`; re-read on every
    connection, a later line for the same name winning. With a latency, the connection is
    made that long after the request, and every chunk read either way is passed on that
    long after (one-way latency, as over a Tor circuit; chunks queue behind each other).
usage: socks-standin.py LISTEN_HOST LISTEN_PORT --tcp
    TCP mode: CONNECT to any HOST:PORT over TCP, as tor's SOCKS port does for
    ordinary servers; prints "CONNECT host:port" (flushed) for every request, so a
    test can see its traffic went through.
Prints "ready" on stdout once listening.
"""
import fcntl, os, socket, struct, sys, threading, time

UNREACHABLE, REFUSED = 4, 5

def load_map(path):
    m = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) in (2, 3):
                m[parts[0]] = (parts[1], int(parts[2]) / 1000 if len(parts) == 3 else 0)
    return m

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b

def splice_all(a, b):
    """Moves bytes a -> b inside the kernel (socket -> pipe -> socket), so the stand-in
    costs next to no CPU and a benchmark through it measures the two ends, not Python."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ
    except OSError:
        pass
    try:
        while True:
            n = os.splice(a.fileno(), w, 1 << 20)
            if n == 0:
                return
            while n:
                n -= os.splice(r, b.fileno(), n)
    finally:
        os.close(r)
        os.close(w)

def pump(a, b, latency=0):
    try:
        if not latency and hasattr(os, "splice"):
            return splice_all(a, b)
        while True:
            d = a.recv(65536)
            if not d:
                break
            if latency:
                time.sleep(latency)
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def onion_target(mapfile):
    """CONNECT NAME:PORT -> the mapped unix socket, or a SOCKS error code."""
    def connect(host, port):
        mapped = load_map(mapfile).get("%s:%d" % (host, port))
        if mapped is None:
            return UNREACHABLE
        target, latency = mapped
        time.sleep(latency)
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            u.connect(target)
        except OSError:
            return REFUSED
        return u, latency
    return connect

def tcp_target(host, port):
    """CONNECT HOST:PORT -> a TCP connection, or a SOCKS error code."""
    print("CONNECT %s:%d" % (host, port), flush=True)
    try:
        u = socket.create_connection((host, port), 10)
    except OSError:
        return REFUSED
    u.settimeout(None)
    u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return u, 0

def handle(c, connect):
    try:
        _, n = recv_exact(c, 2)
        recv_exact(c, n)
        c.sendall(b"\x05\x00")  # no authentication
        _, cmd, _, atyp = recv_exact(c, 4)
        if atyp == 3:
            host = recv_exact(c, recv_exact(c, 1)[0]).decode()
        elif atyp == 1:
            host = socket.inet_ntoa(recv_exact(c, 4))
        else:
            host = socket.inet_ntop(socket.AF_INET6, recv_exact(c, 16))
        port = struct.unpack(">H", recv_exact(c, 2))[0]
        r = connect(host, port) if cmd == 1 else UNREACHABLE
        if isinstance(r, int):
            c.sendall(bytes([5, r, 0, 1]) + b"\x00" * 6)
            c.close()
            return
        u, latency = r
        c.sendall(b"\x05\x00\x00\x01" + b"\x00" * 6)
        threading.Thread(target=pump, args=(u, c, latency), daemon=True).start()
        pump(c, u, latency)
    except (EOFError, OSError):
        c.close()

def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    connect = tcp_target if mode == "--tcp" else onion_target(mode)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        # As with a real network: small messages go out at once (with Nagle's algorithm and
        # the client's delayed ACKs, every request-and-answer waited ~40 ms on loopback).
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(c, connect), daemon=True).start()

if __name__ == "__main__":
    main()
