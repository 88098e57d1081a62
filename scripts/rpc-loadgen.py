#!/usr/bin/env python3
"""rpc-loadgen.py SOCKET: closed-loop load on a JSON-RPC unix socket (daemon.status).

Each connection has one request outstanding at a time; a request's latency is from just
before its send to the complete reply line. Connections are spread over --procs worker
processes (selectors, non-blocking), so the GIL does not cap the load. Prints one JSON
line: requests, seconds, req_per_s, p50_us, p99_us, errors.
"""
import argparse, json, multiprocessing as mp, os, selectors, socket, time

REQ = b'{"jsonrpc":"2.0","id":1,"method":"daemon.status"}\n'


def worker(path, nconn, duration, warmup, q):
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(nconn):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.setblocking(False)
        st = {"sock": s, "buf": b"", "t0": 0}
        conns.append(st)
        sel.register(s, selectors.EVENT_READ, st)
    lat, errors = [], 0
    perf = time.perf_counter_ns
    start = perf()
    measure_from = start + int(warmup * 1e9)
    end = measure_from + int(duration * 1e9)
    for st in conns:
        st["t0"] = perf()
        st["sock"].send(REQ)
    done = 0
    while True:
        for key, _ in sel.select(1.0):
            st = key.data
            data = st["sock"].recv(65536)
            if not data:
                raise SystemExit("server closed a connection")
            buf = st["buf"] + data
            if not buf.endswith(b"\n"):
                st["buf"] = buf
                continue
            st["buf"] = b""
            now = perf()
            if b'"result"' not in buf:
                errors += 1
            if now >= measure_from:
                lat.append(now - st["t0"])
            if now >= end:
                sel.unregister(st["sock"])
                done += 1
                continue
            st["t0"] = perf()
            st["sock"].send(REQ)
        if done == len(conns):
            break
    for st in conns:
        st["sock"].close()
    q.put((lat, errors))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    a = ap.parse_args()
    procs = max(1, min(a.procs, a.connections))
    q = mp.Queue()
    per = [a.connections // procs + (1 if i < a.connections % procs else 0) for i in range(procs)]
    ps = [mp.Process(target=worker, args=(a.socket, n, a.duration, a.warmup, q)) for n in per]
    for p in ps:
        p.start()
    lat, errors = [], 0
    for _ in ps:
        l, e = q.get()
        lat += l
        errors += e
    for p in ps:
        p.join()
    lat.sort()
    pct = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] / 1000 if lat else float("nan")
    print(json.dumps({"requests": len(lat), "seconds": a.duration, "req_per_s": len(lat) / a.duration,
                      "p50_us": pct(0.50), "p99_us": pct(0.99), "errors": errors,
                      "connections": a.connections, "procs": procs}))


if __name__ == "__main__":
    main()
