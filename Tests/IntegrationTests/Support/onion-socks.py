#!/usr/bin/env python3
"""A SOCKS5 server standing in for tor in tests: CONNECT to NAME:PORT is
relayed to the unix socket MAP[NAME:PORT]; anything else is refused
(host unreachable), as tor refuses an unknown onion.

usage: onion-socks.py LISTEN_HOST LISTEN_PORT MAPFILE
MAPFILE lines: `<name>:<port> <unix socket path>`; re-read on every connection.
Prints "ready" on stdout once listening.
"""
import socket, struct, sys, threading

def load_map(path):
    m = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                m[parts[0]] = parts[1]
    return m

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b

def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def handle(c, mapfile):
    try:
        ver, n = recv_exact(c, 2)
        recv_exact(c, n)
        c.sendall(b"\x05\x00")  # no authentication
        ver, cmd, _, atyp = recv_exact(c, 4)
        if atyp == 3:
            host = recv_exact(c, recv_exact(c, 1)[0]).decode()
        elif atyp == 1:
            host = socket.inet_ntoa(recv_exact(c, 4))
        else:
            host = socket.inet_ntop(socket.AF_INET6, recv_exact(c, 16))
        port = struct.unpack(">H", recv_exact(c, 2))[0]
        target = load_map(mapfile).get("%s:%d" % (host, port))
        if cmd != 1 or target is None:
            c.sendall(b"\x05\x04\x00\x01" + b"\x00" * 6)  # host unreachable
            c.close()
            return
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            u.connect(target)
        except OSError:
            c.sendall(b"\x05\x05\x00\x01" + b"\x00" * 6)  # connection refused
            c.close()
            return
        c.sendall(b"\x05\x00\x00\x01" + b"\x00" * 6)
        threading.Thread(target=pump, args=(u, c), daemon=True).start()
        pump(c, u)
    except (EOFError, OSError):
        c.close()

def main():
    host, port, mapfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, mapfile), daemon=True).start()

if __name__ == "__main__":
    main()
