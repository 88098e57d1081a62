"""annexd_client: talk to annexd from a script; Python 3 standard library only.

Quick start (copy this file next to your script, or put contrib/python on PYTHONPATH)::

    import annexd_client as annexd

    c = annexd.connect()                  # --socket rules: see default_socket()
    print(c.call("daemon.status")["version"])
    for repo in c.call("repo.list")["repos"]:
        print(repo["path"], repo["address"])

    try:
        c.call("repo.add", {"path": "/not/a/repo"})
    except annexd.AnnexdError as e:       # every RPC error, typed
        print(e.reason, e.message, e.details)   # not_an_annex_repo ...

    # Several requests in one round trip (a JSON-RPC batch): results in order,
    # a failed request's place holds its AnnexdError (not raised).
    status, repos = c.batch([("daemon.status", None), ("repo.list", None)])

    # Follow events, resuming by id across dropped connections and annexd restarts:
    for ev in annexd.events(types=["transfer.finished", "transfer.failed"]):
        if isinstance(ev, annexd.Restarted):   # annexd restarted: ids start again
            print("annexd restarted; re-read what you keep (e.g. transfer.list)")
            continue
        if isinstance(ev, annexd.Missed):      # events were lost (too far behind)
            print("missed events", ev.after, "to", ev.until)
            continue
        print(ev["id"], ev["type"], ev["transfer"]["file"])

Socket: ``connect(path)``; without a path, $ANNEXD_SOCKET, else
$XDG_RUNTIME_DIR/annexd/rpc.sock, else /tmp/annexd-UID/rpc.sock (as annex-cli).
When nothing listens there, ``NotRunning`` (an AnnexdError, reason
``daemon_not_running``) says so and how to start annexd.

Errors: ``AnnexdError`` carries ``code`` (the JSON-RPC code), ``message`` (for
people: what went wrong and what to do), ``reason`` (error.data.reason, a stable
snake_case word to test in scripts) and ``details`` (the rest of error.data).
``ConnectionLost`` (reason ``connection_lost``) is raised when annexd closes the
connection before answering.

Events (``events()`` or ``EventStream``): each item is an event's params, a dict
with ``id``, ``boot``, ``type``, ``time`` and the fields docs/API.md lists for its
type. Ids are gapless within one boot (one run of annexd). The stream:

* without ``since`` starts with a ``snapshot`` event (the current state), then
  live events; with ``since`` (and the ``boot`` it belongs to) it replays the
  events after it that annexd still keeps, then live ones (``since`` without
  ``boot`` is taken to be of the current boot: an id it has not reached raises
  AnnexdError ``unknown_event_id``);
* when the connection drops (annexd stopping, a broken socket), it reconnects,
  retrying with doubling delays up to ``max_delay`` seconds (``give_up_after``
  seconds in all, None: forever), and resubscribes from the last id it gave you:
  nothing is missed or repeated;
* when it fell behind (annexd's ``event.overflow``), it resubscribes from where
  annexd says, again without a gap;
* when annexd restarted (a new boot id), it yields one ``Restarted`` marker
  (``old_boot``, ``new_boot``), then every event of the new boot from its first;
  anything you derived from the old ids is stale: re-read the state you need;
* when events were lost for good (annexd no longer keeps them), it yields a
  ``Missed`` marker (``after``, ``until``: the ids lost are after < id <= until)
  and goes on with a fresh snapshot.

``on_subscribe(result)``, when given, is called with events.subscribe's result
(``boot``, ``latest``) each time the stream (re)subscribes.
``stream.last_id`` and ``stream.boot`` are where it stands: save both to resume
in a later run with ``events(since=last_id, boot=boot)``.
"""

import errno as _errno
import itertools
import json
import os
import socket
import time

__all__ = ["default_socket", "connect", "Client", "AnnexdError", "NotRunning", "ConnectionLost",
           "events", "EventStream", "Restarted", "Missed"]


def default_socket(env=None):
    """annexd's socket, as annex-cli finds it: $ANNEXD_SOCKET, else
    $XDG_RUNTIME_DIR/annexd/rpc.sock (an absolute XDG_RUNTIME_DIR), else /tmp/annexd-UID/rpc.sock."""
    env = os.environ if env is None else env
    if env.get("ANNEXD_SOCKET"):
        return env["ANNEXD_SOCKET"]
    runtime = env.get("XDG_RUNTIME_DIR") or ""
    if runtime.startswith("/"):
        return runtime + "/annexd/rpc.sock"
    return "/tmp/annexd-%d/rpc.sock" % os.getuid()


class AnnexdError(Exception):
    """An error from annexd (or about reaching it): code, message, reason, details."""

    def __init__(self, code, message, reason, details=None, method=None):
        self.code = code
        self.message = message
        self.reason = reason
        self.details = details or {}
        self.method = method
        super().__init__(str(self))

    def __str__(self):
        where = "%s: " % self.method if self.method else ""
        return "%s%s (%s)" % (where, self.message, self.reason)

    @classmethod
    def from_error(cls, error, method=None):
        """From a JSON-RPC error object (data.reason and the rest of data as details)."""
        data = dict(error.get("data") or {})
        reason = data.pop("reason", None) or "error"
        return cls(error.get("code", 0), error.get("message", ""), reason, data, method)


class NotRunning(AnnexdError):
    """Nothing listens on the socket (reason daemon_not_running)."""

    def __init__(self, path, why):
        self.path = path
        super().__init__(-1, "annexd is not running (%s at %s). Start it with `annexd`, or `systemctl --user start annexd`; "
                         "use --socket or ANNEXD_SOCKET if it listens elsewhere" % (why, path),
                         "daemon_not_running", {"socket": path})


class ConnectionLost(AnnexdError):
    """annexd closed the connection (or it broke) before answering (reason connection_lost)."""

    def __init__(self, message):
        super().__init__(-1, message, "connection_lost")


class Client:
    """One connection to annexd: JSON-RPC 2.0, one JSON text per line.

    Notifications that arrive while waiting for an answer are kept, in order, for
    ``notifications()``. Use as a context manager, or close() it.
    """

    def __init__(self, path=None, timeout=None):
        self.path = path or default_socket()
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._pending = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(self.path)
        except OSError as e:
            self._sock.close()
            if e.errno == _errno.ENOENT:
                raise NotRunning(self.path, "no socket") from None
            if e.errno == _errno.ECONNREFUSED:
                raise NotRunning(self.path, "nothing listening") from None
            raise AnnexdError(-1, "cannot connect to %s: %s" % (self.path, e.strerror), "io_error",
                              {"socket": self.path}) from None
        self._sock.settimeout(timeout)
        self._file = self._sock.makefile("rb")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Closes the connection (a subscription on it ends)."""
        try:
            self._file.close()
        finally:
            self._sock.close()

    def drop(self):
        """Breaks the connection as a failing network would (for tests of resuming): the next
        read sees its end."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def call(self, method, params=None):
        """Calls ``method`` with ``params`` (a dict, or None): its result; AnnexdError on an error."""
        rid = self._send(self._request(method, params))["id"]
        reply = self._await(lambda m: isinstance(m, dict) and m.get("id") in (rid, None) and "method" not in m, method)
        if "error" in reply:
            raise AnnexdError.from_error(reply["error"], method)
        return reply.get("result")

    def batch(self, calls):
        """Sends ``calls``, a list of (method, params) pairs, as one JSON-RPC batch: the results in
        the same order, a failed call's place holding its AnnexdError (not raised)."""
        calls = list(calls)
        if not calls:
            return []
        requests = [self._request(m, p) for m, p in calls]
        self._sendline(json.dumps(requests))
        reply = self._await(lambda m: isinstance(m, list) or (isinstance(m, dict) and "error" in m and m.get("id") is None),
                            "a batch")
        if isinstance(reply, dict):  # the whole batch was refused (too large, ...)
            raise AnnexdError.from_error(reply["error"], "batch")
        by_id = {r.get("id"): r for r in reply}
        out = []
        for req in requests:
            r = by_id.get(req["id"])
            if r is None:
                out.append(AnnexdError(-1, "annexd did not answer this request of the batch", "no_answer", method=req["method"]))
            elif "error" in r:
                out.append(AnnexdError.from_error(r["error"], req["method"]))
            else:
                out.append(r.get("result"))
        return out

    def notifications(self):
        """Yields notifications ({"method", "params"}) as they arrive, the kept ones first;
        raises ConnectionLost when the connection ends."""
        while True:
            while self._pending:
                yield self._pending.pop(0)
            msg = self._read()
            if isinstance(msg, dict) and "method" in msg and "id" not in msg:
                yield msg

    # Internals

    def _request(self, method, params):
        req = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            req["params"] = params
        return req

    def _send(self, req):
        self._sendline(json.dumps(req))
        return req

    def _sendline(self, text):
        try:
            self._sock.sendall(text.encode() + b"\n")
        except OSError as e:
            raise ConnectionLost("cannot write to annexd: %s" % (e.strerror or e)) from None

    def _read(self):
        try:
            line = self._file.readline()
        except (OSError, ValueError) as e:
            raise ConnectionLost("cannot read from annexd: %s" % e) from None
        if not line:
            raise ConnectionLost("annexd closed the connection")
        try:
            return json.loads(line)
        except ValueError:
            raise AnnexdError(-1, "annexd sent something that is not JSON: %r" % line[:200], "bad_reply") from None

    def _await(self, is_reply, what):
        while True:
            try:
                msg = self._read()
            except ConnectionLost as e:
                raise ConnectionLost("%s before answering %s" % (e.message, what)) from None
            if is_reply(msg):
                return msg
            if isinstance(msg, dict) and "method" in msg and "id" not in msg:
                self._pending.append(msg)


def connect(path=None, timeout=None):
    """A Client on ``path`` (default: default_socket())."""
    return Client(path, timeout)


class Restarted:
    """Marker in an event stream: annexd restarted (``old_boot`` -> ``new_boot``); event ids
    start again, and what came before belongs to the old boot."""

    def __init__(self, old_boot, new_boot):
        self.old_boot = old_boot
        self.new_boot = new_boot

    def __repr__(self):
        return "Restarted(old_boot=%r, new_boot=%r)" % (self.old_boot, self.new_boot)


class Missed:
    """Marker in an event stream: the events with after < id <= until (of ``boot``) are lost
    (annexd no longer keeps them); a snapshot event follows."""

    def __init__(self, boot, after, until):
        self.boot = boot
        self.after = after
        self.until = until

    def __repr__(self):
        return "Missed(boot=%r, after=%r, until=%r)" % (self.boot, self.after, self.until)


class EventStream:
    """Iterates annexd's events, resuming by id; see the module docstring."""

    def __init__(self, path=None, since=None, boot=None, types=None,
                 first_delay=0.1, max_delay=5.0, give_up_after=None, on_subscribe=None):
        self.path = path
        self.on_subscribe = on_subscribe
        self.types = list(types) if types else None
        self.last_id = since
        self.boot = boot
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.give_up_after = give_up_after
        self.client = None
        self._closed = False

    def __iter__(self):
        return self._run()

    def close(self):
        """Ends the stream (its connection too)."""
        self._closed = True
        if self.client is not None:
            self.client.close()

    def _run(self):
        while not self._closed:
            markers = self._subscribe()
            for m in markers:
                yield m
            asked = self.last_id
            delivered = False
            try:
                for n in self.client.notifications():
                    p = n.get("params") or {}
                    if n.get("method") == "event.overflow":
                        resume = p.get("resume_from", 0)
                        if resume == asked and not delivered:
                            # Asked for events annexd no longer keeps: say so, start afresh.
                            latest = self.client.call("daemon.status")["latest_event"]
                            yield Missed(self.boot, resume, latest)
                            self.last_id = None
                        else:
                            self.last_id = resume
                        break
                    if n.get("method") != "event" or p.get("boot") != self.boot:
                        continue
                    if self.last_id is not None and p.get("id", 0) <= self.last_id and p.get("type") != "snapshot":
                        continue  # already given (never happens with annexd's replay; kept as a guard)
                    self.last_id = p.get("id", self.last_id)
                    delivered = True
                    yield p
            except ConnectionLost:
                pass
            if self.client is not None:
                self.client.close()
                self.client = None

    def _connect(self):
        """Connects, waiting with doubling delays while annexd is not there."""
        delay = self.first_delay
        start = time.monotonic()
        while True:
            try:
                self.client = Client(self.path)
                return
            except (NotRunning, ConnectionLost):
                if self.give_up_after is not None and time.monotonic() - start + delay > self.give_up_after:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, self.max_delay)

    def _subscribe(self):
        """(Re)subscribes from last_id in the current boot; the markers to yield first."""
        markers = []
        while True:
            self._connect()
            try:
                status = self.client.call("daemon.status")
                boot = status["boot"]
                if self.boot is not None and boot != self.boot:
                    markers.append(Restarted(self.boot, boot))
                    self.last_id = 0  # the new boot from its first event
                self.boot = boot
                params = {}
                if self.last_id is not None:
                    params["since"] = self.last_id
                if self.types:
                    params["types"] = self.types
                sub = self.client.call("events.subscribe", params)
                if sub["boot"] == boot:
                    if self.on_subscribe:
                        self.on_subscribe(sub)
                    return markers
                # annexd restarted between the two calls: start over on a new connection.
            except ConnectionLost:
                pass
            self.client.close()
            self.client = None


def events(path=None, since=None, boot=None, types=None, **retry):
    """An EventStream: iterate it for events (and the rare Restarted or Missed marker)."""
    return EventStream(path, since=since, boot=boot, types=types, **retry)
