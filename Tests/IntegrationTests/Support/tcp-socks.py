#!/usr/bin/env python3
"""A plain SOCKS5 proxy for tests (CONNECT to any TCP host:port, no authentication), standing
in for tor's SOCKS port where the targets are ordinary TCP servers. Prints
"CONNECT host:port" (flushed) for every request, so a test can see its traffic went through.

usage: tcp-socks.py LISTEN_PORT   (listens on 127.0.0.1)
"""
import socket, struct, sys, threading

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

def handle(c):
    try:
        _, n = recv_exact(c, 2)
        recv_exact(c, n)
        c.sendall(b"\x05\x00")
        _, cmd, _, atyp = recv_exact(c, 4)
        if atyp == 3:
            host = recv_exact(c, recv_exact(c, 1)[0]).decode()
        elif atyp == 1:
            host = socket.inet_ntoa(recv_exact(c, 4))
        else:
            host = socket.inet_ntop(socket.AF_INET6, recv_exact(c, 16))
        port = struct.unpack(">H", recv_exact(c, 2))[0]
        print("CONNECT %s:%d" % (host, port), flush=True)
        try:
            u = socket.create_connection((host, port), 10)
            u.settimeout(None)
        except OSError:
            c.sendall(b"\x05\x05\x00\x01" + b"\x00" * 6)
            c.close()
            return
        c.sendall(b"\x05\x00\x00\x01" + b"\x00" * 6)
        threading.Thread(target=pump, args=(u, c), daemon=True).start()
        pump(c, u)
    except (EOFError, OSError):
        c.close()

def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(64)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

main()
