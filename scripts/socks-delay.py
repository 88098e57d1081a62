#!/usr/bin/env python3
"""The SOCKS stand-in with a network delay, where the kernel has no netem.

usage: socks-delay.py DELAY_MS STANDIN_PY LISTEN_HOST LISTEN_PORT MAPFILE

Runs STANDIN_PY (Tests/IntegrationTests/Support/socks-standin.py, onion mode) with every
relayed byte held DELAY_MS before it goes on, in each direction (so a request and its
answer cost 2 x DELAY_MS more, as `tc qdisc add dev lo root netem delay DELAY_MS` does to
traffic that crosses lo both ways), and one round trip added to every CONNECT (tor's
answer comes after the circuit's). Order within a direction is kept; no bandwidth limit.
"""
import collections, importlib.util, socket, sys, threading, time

delay = float(sys.argv[1]) / 1000
spec = importlib.util.spec_from_file_location("standin", sys.argv[2])
standin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(standin)


def delayed_pump(a, b, latency=0):
    """As standin.pump, each chunk sent DELAY after it was read (the map's own latency is not used)."""
    queue = collections.deque()
    cv = threading.Condition()
    eof = [False]

    def sender():
        broken = False
        while True:
            with cv:
                while not queue and not eof[0]:
                    cv.wait()
                if not queue:
                    break
                due, data = queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not broken:
                try:
                    b.sendall(data)
                except OSError:
                    broken = True
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            with cv:
                queue.append((time.monotonic() + delay, d))
                cv.notify()
    except OSError:
        pass
    with cv:
        eof[0] = True
        cv.notify()
    t.join()


original_target = standin.onion_target


def delayed_target(mapfile):
    connect = original_target(mapfile)

    def delayed_connect(host, port):
        time.sleep(2 * delay)
        return connect(host, port)
    return delayed_connect


standin.pump = delayed_pump
standin.onion_target = delayed_target
sys.argv = [sys.argv[2]] + sys.argv[3:]
standin.main()
