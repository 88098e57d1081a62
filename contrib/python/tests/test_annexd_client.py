"""annexd_client.py against a real annexd.

    ANNEXD=.build/debug/annexd python3 -m unittest discover -s contrib/python/tests -v

Each test starts its own annexd (--tor none) in a scratch directory under /tmp; git and
git-annex must be in PATH. Run by IntegrationTests' PythonClientTests under `make test`.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))
import annexd_client as annexd  # noqa: E402

ANNEXD = os.environ.get("ANNEXD") or os.path.join(ROOT, ".build", "debug", "annexd")
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="annexd tests", GIT_AUTHOR_EMAIL="tests@annexd.invalid",
               GIT_COMMITTER_NAME="annexd tests", GIT_COMMITTER_EMAIL="tests@annexd.invalid")


class Daemon:
    """annexd daemon on DIR/state and DIR/rpc.sock, its output in DIR/annexd-N.log."""

    runs = 0

    def __init__(self, dir):
        self.dir = dir
        self.socket = os.path.join(dir, "rpc.sock")
        Daemon.runs += 1
        self.log_path = os.path.join(dir, "annexd-%d.log" % Daemon.runs)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([ANNEXD, "daemon", "--state-dir", os.path.join(dir, "state"), "--socket", self.socket,
                                          "--log-level", "notice", "--tor", "none"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while True:
            try:
                with annexd.connect(self.socket) as c:
                    status = c.call("daemon.status")
                if status["pid"] == self.proc.pid:
                    self.boot = status["boot"]
                    return
            except annexd.AnnexdError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("annexd did not start:\n" + self.log())
            time.sleep(0.02)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class Base(unittest.TestCase):
    def setUp(self):
        # Every wait below is bounded: a hang fails the test instead of blocking `make test`.
        signal.signal(signal.SIGALRM, self._timeout)
        signal.alarm(90)
        self.dir = tempfile.mkdtemp(prefix="annexd-py-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.daemon = self.start()
        self.repo = os.path.join(self.dir, "myrepo")
        subprocess.run("git init -q myrepo && cd myrepo && git annex init -q myrepo", shell=True, cwd=self.dir,
                       env=GIT_ENV, check=True)
        with annexd.connect(self.daemon.socket) as c:
            c.call("repo.add", {"path": self.repo})

    def tearDown(self):
        signal.alarm(0)

    @staticmethod
    def _timeout(*_):
        raise AssertionError("the test took over 90 s")

    def start(self):
        d = Daemon(self.dir)
        self.addCleanup(d.kill)
        return d

    def invite(self, name):
        with annexd.connect(self.daemon.socket) as c:
            return c.call("peer.invite", {"repo": self.repo, "name": name})


class CallTests(Base):
    def test_call_answers(self):
        with annexd.connect(self.daemon.socket) as c:
            status = c.call("daemon.status")
            repos = c.call("repo.list")["repos"]
        self.assertEqual(status["pid"], self.daemon.proc.pid)
        self.assertEqual(status["boot"], self.daemon.boot)
        self.assertEqual([r["path"] for r in repos], [self.repo])

    def test_batch_answers_in_order_with_errors_in_place(self):
        with annexd.connect(self.daemon.socket) as c:
            status, repos, wrong = c.batch([("daemon.status", None), ("repo.list", {}), ("no.such.method", None)])
        self.assertEqual(status["pid"], self.daemon.proc.pid)
        self.assertEqual(len(repos["repos"]), 1)
        self.assertIsInstance(wrong, annexd.AnnexdError)
        self.assertEqual(wrong.reason, "method_not_found")
        self.assertEqual(wrong.code, -32601)
        self.assertEqual(wrong.details.get("method"), "no.such.method")

    def test_rpc_error_carries_code_message_reason_details(self):
        with annexd.connect(self.daemon.socket) as c:
            with self.assertRaises(annexd.AnnexdError) as cm:
                c.call("events.subscribe", {"types": ["no.such_event"]})
            # The connection still works after an error.
            self.assertEqual(c.call("daemon.status")["pid"], self.daemon.proc.pid)
        e = cm.exception
        self.assertEqual(e.code, -32602)
        self.assertEqual(e.reason, "unknown_event_type")
        self.assertEqual(e.details, {"type": "no.such_event"})
        self.assertIn("no.such_event is not an event type", e.message)
        self.assertEqual(e.method, "events.subscribe")
        self.assertNotIsInstance(e, annexd.NotRunning)


class NotRunningTests(unittest.TestCase):
    def test_no_socket_says_annexd_is_not_running(self):
        path = "/tmp/annexd-py-none-%d/rpc.sock" % os.getpid()
        with self.assertRaises(annexd.NotRunning) as cm:
            annexd.connect(path)
        e = cm.exception
        self.assertEqual(e.reason, "daemon_not_running")
        self.assertIn("annexd is not running (no socket at %s)" % path, str(e))
        self.assertIn("systemctl --user start annexd", e.message)

    def test_socket_without_listener_says_annexd_is_not_running(self):
        import socket
        d = tempfile.mkdtemp(prefix="annexd-py-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "rpc.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()  # the file stays, nothing listens: as after a crash
        with self.assertRaises(annexd.NotRunning) as cm:
            annexd.connect(path)
        self.assertIn("nothing listening at %s" % path, cm.exception.message)

    def test_default_socket_follows_annex_cli(self):
        self.assertEqual(annexd.default_socket({"ANNEXD_SOCKET": "/x/s", "XDG_RUNTIME_DIR": "/run/user/7"}), "/x/s")
        self.assertEqual(annexd.default_socket({"XDG_RUNTIME_DIR": "/run/user/7"}), "/run/user/7/annexd/rpc.sock")
        self.assertEqual(annexd.default_socket({"XDG_RUNTIME_DIR": "relative"}), "/tmp/annexd-%d/rpc.sock" % os.getuid())
        self.assertEqual(annexd.default_socket({}), "/tmp/annexd-%d/rpc.sock" % os.getuid())


class EventTests(Base):
    def stream(self, **kw):
        subs = []
        s = annexd.events(self.daemon.socket, first_delay=0.02, max_delay=0.2, give_up_after=30,
                          on_subscribe=subs.append, **kw)
        self.addCleanup(s.close)
        return s, subs

    def test_resumes_after_a_dropped_connection_without_gap_or_repeat(self):
        stream, subs = self.stream()
        it = iter(stream)
        first = next(it)
        self.assertEqual(first["type"], "snapshot")
        self.assertEqual([r["path"] for r in first["repos"]], [self.repo])
        self.invite("alice")
        seen = [first]
        while not any(e["type"] == "peer.invited" for e in seen[1:]):
            seen.append(next(it))
        old_client = stream.client
        old_client.drop()  # the connection breaks; meanwhile two more events happen
        self.invite("bob")
        self.invite("carol")
        while sum(e["type"] == "peer.invited" for e in seen[1:]) < 3:
            e = next(it)
            self.assertIsInstance(e, dict, "no marker on a plain reconnect: %r" % (e,))
            seen.append(e)
        self.assertIsNot(stream.client, old_client, "it reconnected")
        self.assertEqual(len(subs), 2, "subscribed again once: %r" % subs)
        ids = [e["id"] for e in seen]
        self.assertEqual(ids[1:], list(range(ids[0] + 1, ids[0] + len(ids))), "gapless, no repeats: %r" % ids)
        self.assertEqual([e["peer"] for e in seen if e["type"] == "peer.invited"], ["alice", "bob", "carol"])
        self.assertEqual(stream.last_id, ids[-1])

    def test_resumes_from_an_id_given_by_the_caller(self):
        before = self.invite("alice")
        self.assertTrue(before["address"].startswith("tor-annex::"))
        with annexd.connect(self.daemon.socket) as c:
            latest = c.call("daemon.status")["latest_event"]
        self.invite("bob")
        stream, _ = self.stream(since=latest, boot=self.daemon.boot, types=["peer.invited"])
        e = next(iter(stream))
        self.assertEqual((e["type"], e["peer"], e["id"]), ("peer.invited", "bob", latest + 1))

    def test_reports_an_annexd_restart_then_gives_the_new_boot_from_its_start(self):
        stream, subs = self.stream()
        it = iter(stream)
        self.assertEqual(next(it)["type"], "snapshot")
        self.invite("alice")
        old = []
        while not old or old[-1]["type"] != "peer.invited":
            old.append(next(it))
        self.assertEqual(old[-1]["peer"], "alice")

        self.daemon.stop()
        e = next(it)
        self.assertEqual(e["type"], "daemon.stopping", "the old daemon says it stops: %r" % (e,))
        self.daemon = self.start()  # same state and socket: a new boot
        self.invite("bob")  # before or after the stream is back: it must not be missed

        marker = next(it)
        self.assertIsInstance(marker, annexd.Restarted)
        self.assertEqual((marker.old_boot, marker.new_boot), (old[0]["boot"], self.daemon.boot))
        self.assertNotEqual(marker.old_boot, marker.new_boot)
        new = []
        while not any(e["type"] == "peer.invited" for e in new):
            e = next(it)
            self.assertIsInstance(e, dict, "%r" % (e,))
            new.append(e)
        self.assertEqual([e["id"] for e in new], list(range(1, len(new) + 1)), "the new boot from id 1: %r" % new)
        self.assertTrue(all(e["boot"] == self.daemon.boot for e in new))
        self.assertEqual([e["peer"] for e in new if e["type"] == "peer.invited"], ["bob"])
        self.assertEqual(stream.boot, self.daemon.boot)


if __name__ == "__main__":
    unittest.main()
