#!/usr/bin/env python3
"""Record git-annex P2P (p2pstdio) sessions as direction-tagged transcripts.

Two modes:

  recorder.py ssh [SSH-OPTIONS...] HOST COMMAND...
      Stand-in for ssh, used as GIT_SSH_COMMAND (with GIT_ANNEX_USE_GIT_SSH=1).
      Skips the ssh options and the host, logs the remote command, and runs it
      locally with `sh -c` (PATH taken from REC_SERVER_PATH).  If the command is
      a `git-annex-shell ... p2pstdio ...`, the bytes in both directions are
      relayed and recorded into a transcript.
      Environment:
        REC_DIR          directory for transcripts (required)
        REC_NAME         session name; transcript = REC_DIR/REC_NAME.transcript,
                         further p2pstdio connections in the same session get
                         REC_NAME.2.transcript, .3, ...
        REC_LOG          file to which every remote command is appended
        REC_SERVER_PATH  PATH for the server side (default: inherited PATH)
        REC_HEADER       extra "key: value" header lines, separated by ';'
        REC_THROTTLE     if set, bytes/second limit for server->client bytes
        REC_SUBST        "FROM=TO;FROM=TO" text substitutions applied to the
                         transcript text (e.g. to replace temp dir paths)

  recorder.py script NAME OUTFILE -- COMMAND...
      Runs COMMAND (e.g. git-annex-shell p2pstdio ...) and plays the named
      hand-written session (see SCRIPTS below) against it, one step at a time,
      waiting for the server to go quiet after each step, recording the
      transcript to OUTFILE.  Placeholders {NAME} in steps are replaced from
      the environment variables REC_VAR_NAME.

Transcript format: see README.md ("Transcript format").
"""

import base64
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

FORMAT_LINE = b"# annexd-p2p-transcript v1\n"
B64_CHUNK = 3072  # raw payload bytes per "+" record (4096 base64 chars)


class Transcript:
    """Thread-safe writer of transcript records."""

    def __init__(self, path, subst=()):
        self.f = open(path, "wb")
        self.lock = threading.Lock()
        self.subst = [(a.encode(), b.encode()) for a, b in subst]
        self.f.write(FORMAT_LINE)

    def _s(self, data):
        for a, b in self.subst:
            data = data.replace(a, b)
        return data

    def header(self, key, value):
        self.comment(f"{key}: {value}")

    def comment(self, text):
        with self.lock:
            t = self._s(text.encode("utf-8", "surrogateescape"))
            t = t.replace(b"\n", b"\\n")
            self.f.write(b"# " + t + b"\n")
            self.f.flush()

    def record(self, tag, data):
        """tag like b'C:'; data bytes (no newline)."""
        with self.lock:
            self.f.write(tag + b" " + data + b"\n")
            self.f.flush()

    def line(self, d, line):
        # d: b"C" or b"S"; line without the terminating \n
        if is_plain(line):
            self.record(d + b":", self._s(line))
        else:
            self.record(d + b"%", base64.b64encode(line))

    def payload(self, d, data):
        for i in range(0, len(data), B64_CHUNK):
            self.record(d + b"+", base64.b64encode(data[i:i + B64_CHUNK]))

    def close(self):
        with self.lock:
            self.f.close()


def is_plain(line):
    """A line is written as text if it is UTF-8 without control chars."""
    try:
        s = line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 0x20 or ord(c) == 0x7f for c in s)


class StreamParser:
    """Splits one direction of a P2P byte stream into lines and DATA payloads."""

    def __init__(self, tr, d):
        self.tr = tr
        self.d = d  # b"C" or b"S"
        self.buf = b""
        self.data_left = 0  # payload bytes still expected
        self.data_got = 0
        self.data_buf = b""

    def feed(self, chunk):
        while chunk:
            if self.data_left > 0:
                take = chunk[:self.data_left]
                chunk = chunk[len(take):]
                self.data_left -= len(take)
                self.data_got += len(take)
                self.data_buf += take
                while len(self.data_buf) >= B64_CHUNK:
                    self.tr.payload(self.d, self.data_buf[:B64_CHUNK])
                    self.data_buf = self.data_buf[B64_CHUNK:]
                if self.data_left == 0:
                    self._end_payload()
                continue
            nl = chunk.find(b"\n")
            if nl < 0:
                self.buf += chunk
                return
            line = self.buf + chunk[:nl]
            chunk = chunk[nl + 1:]
            self.buf = b""
            self.tr.line(self.d, line)
            n = data_len(line)
            if n is not None:
                self.data_left = n
                self.data_got = 0
                self.data_buf = b""
                if n == 0:
                    self._end_payload()

    def _end_payload(self):
        if self.data_buf:
            self.tr.payload(self.d, self.data_buf)
            self.data_buf = b""
        self.tr.record(self.d + b"=", str(self.data_got).encode())

    def eof(self):
        if self.data_left > 0:
            # truncated payload
            self._end_payload()
            self.tr.comment(f"{self.d.decode()} payload truncated: "
                            f"{self.data_left} bytes missing")
            self.data_left = 0
        if self.buf:
            self.tr.record(self.d + b"~", base64.b64encode(self.buf))
            self.buf = b""
        self.tr.record(self.d + b".", b"EOF")


def data_len(line):
    parts = line.split(b" ")
    if len(parts) == 2 and parts[0] == b"DATA" and parts[1].isdigit():
        return int(parts[1])
    return None


def write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]


def pump(src_fd, dst_fd, parser, throttle=None, on_eof=None):
    try:
        while True:
            try:
                chunk = os.read(src_fd, 4096 if throttle else 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if throttle:
                time.sleep(len(chunk) / throttle)
            parser.feed(chunk)  # record first, so replies never precede it
            try:
                write_all(dst_fd, chunk)
            except OSError:
                parser.tr.comment(f"write to {'server' if parser.d == b'C' else 'client'} failed (peer gone)")
                break
    finally:
        parser.eof()
        # Like a dropped ssh connection: the side we read from sees a broken
        # pipe from now on (otherwise a server blocked writing would hang).
        try:
            os.close(src_fd)
        except OSError:
            pass
        if on_eof:
            on_eof()


def stderr_pump(src_fd, tr, passthrough=True):
    buf = b""
    while True:
        try:
            chunk = os.read(src_fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        if passthrough:
            try:
                write_all(2, chunk)
            except OSError:
                pass
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            tr.record(b"E:", tr._s(line.replace(b"\r", b"\\r")))
    if buf:
        tr.record(b"E:", tr._s(buf.replace(b"\r", b"\\r")))


# ---------------------------------------------------------------- ssh mode

# ssh options that take an argument (from ssh(1))
SSH_ARG_OPTS = set("BbcDEeFIiJLlmOoPpQRSWw")


def split_ssh_args(args):
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        # bundled flags, e.g. -nT, or option with attached value -p22
        j = 1
        while j < len(a):
            if a[j] in SSH_ARG_OPTS:
                if j == len(a) - 1:
                    i += 1  # value is the next arg
                break
            j += 1
        i += 1
    host = args[i] if i < len(args) else None
    cmd = args[i + 1:]
    return args[:i], host, cmd


def parse_subst():
    out = []
    for item in os.environ.get("REC_SUBST", "").split(";"):
        if "=" in item:
            a, b = item.split("=", 1)
            if a:
                out.append((a, b))
    # longest first so that nested paths are replaced correctly
    out.sort(key=lambda p: -len(p[0]))
    return out


def new_transcript_path(d, name):
    n = 1
    while True:
        p = os.path.join(d, name + ("" if n == 1 else f".{n}") + ".transcript")
        try:
            fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
            return p
        except FileExistsError:
            n += 1


def ssh_mode(args):
    opts, host, cmd = split_ssh_args(args)
    command = " ".join(cmd)
    env = dict(os.environ)
    if env.get("REC_SERVER_PATH"):
        env["PATH"] = env["REC_SERVER_PATH"]
    for k in list(env):
        if k.startswith("REC_"):
            del env[k]
    # The client's GIT_DIR etc. must not leak into the "remote" side.
    for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX",
              "GIT_SSH_COMMAND", "GIT_ANNEX_USE_GIT_SSH"):
        env.pop(k, None)
    subst = parse_subst()
    is_p2p = "git-annex-shell" in command and "p2pstdio" in command
    log = os.environ.get("REC_LOG")
    path = None
    if is_p2p and os.environ.get("REC_DIR"):
        path = new_transcript_path(os.environ["REC_DIR"],
                                   os.environ.get("REC_NAME", "session"))
    if log:
        with open(log, "a") as f:
            line = f"[{os.environ.get('REC_NAME', '?')}] ssh {' '.join(shlex.quote(o) for o in opts)} {host} -- {command}"
            for a, b in subst:
                line = line.replace(a, b)
            if path:
                line += f"   => {os.path.basename(path)}"
            f.write(line + "\n")
    if not command:
        if "-G" in opts:
            # git probes the ssh variant with `ssh -G HOST`; OpenSSH exits 0.
            return 0
        sys.stderr.write("recorder: no command\n")
        return 255
    if not path:
        os.execvpe("sh", ["sh", "-c", command], env)
    busy = path + ".inprogress"
    open(busy, "w").close()
    try:
        return ssh_record(path, busy, command, env, subst)
    finally:
        try:
            os.unlink(busy)
        except OSError:
            pass


def ssh_record(path, busy, command, env, subst):
    tr = Transcript(path, subst)
    tr.header("name", os.path.basename(path)[:-len(".transcript")])
    for h in os.environ.get("REC_HEADER", "").split(";"):
        if ":" in h:
            k, v = h.split(":", 1)
            tr.header(k.strip(), v.strip())
    tr.header("command", command)
    throttle = os.environ.get("REC_THROTTLE")
    throttle = float(throttle) if throttle else None
    if throttle:
        tr.header("throttle", f"server->client relayed at {throttle:.0f} bytes/s")
    return relay(tr, ["sh", "-c", command], env, throttle)


def relay(tr, argv, env, throttle=None):
    # git-annex may signal its ssh child when it is done with it; a real ssh
    # would just die and the remote side would see EOF.  We note the signal
    # and go on, so that the server's side is recorded to the end.
    def on_signal(signum, frame):
        tr.comment(f"recorder (the ssh stand-in) got signal {signum} from the client")
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    child = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cin = child.stdin.fileno()
    cparser = StreamParser(tr, b"C")
    sparser = StreamParser(tr, b"S")

    def close_child_stdin():
        try:
            child.stdin.close()
        except OSError:
            pass

    def close_our_stdout():
        try:
            os.close(1)
        except OSError:
            pass

    tc = threading.Thread(target=pump, args=(0, cin, cparser, None, close_child_stdin), daemon=True)
    sfd = os.dup(child.stdout.fileno())
    child.stdout.close()
    ts = threading.Thread(target=pump, args=(sfd, 1, sparser, throttle, close_our_stdout))
    te = threading.Thread(target=stderr_pump, args=(child.stderr.fileno(), tr))
    tc.start(); ts.start(); te.start()
    ts.join(); te.join()
    rc = child.wait()
    # the client side may still be open; give it a moment to reach EOF
    tc.join(timeout=2)
    if tc.is_alive():
        tr.comment("client stream still open when server exited")
    tr.header("server-exit", str(rc))
    tr.close()
    return rc


# ------------------------------------------------------------- script mode

def L(s):
    return ("line", s)


def RAW(b):
    return ("raw", b)


def WAIT(t):
    return ("wait", t)


CLOSE = ("close", None)

BIGLINE = "CHECKPRESENT " + "X" * 40000

# Hand-written sessions.  Each step is sent, then the recorder waits until the
# server has been quiet for a while (or exited).  {KEY6} etc. come from env.
SCRIPTS = {
    "version-4": [L("VERSION 4"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "version-1": [L("VERSION 1"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "version-0": [L("VERSION 0"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "no-version": [L("CHECKPRESENT {KEY6}"), CLOSE],
    "version-99": [L("VERSION 99"), CLOSE],
    "version-twice": [L("VERSION 1"), L("VERSION 1"), CLOSE],
    "gettimestamp-v4": [L("VERSION 4"), L("GETTIMESTAMP"), L("GETTIMESTAMP"), CLOSE],
    "gettimestamp-v1": [L("VERSION 1"), L("GETTIMESTAMP"), CLOSE],
    "remove-before-past-v4": [L("VERSION 4"), L("REMOVE-BEFORE 1 {KEY6}"), CLOSE],
    "remove-before-absent-v4": [L("VERSION 4"), L("GETTIMESTAMP"),
                                L("REMOVE-BEFORE 9999999999 {ABSENTKEY}"), CLOSE],
    "remove-before-v1": [L("VERSION 1"), L("REMOVE-BEFORE 9999999999 {ABSENTKEY}"), CLOSE],
    "checkpresent-absent": [L("VERSION 1"), L("CHECKPRESENT {ABSENTKEY}"),
                            L("CHECKPRESENT {KEY6}"), CLOSE],
    "get-absent": [L("VERSION 1"), L("GET 0 absent.txt {ABSENTKEY}"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "get-absent-v0": [L("GET 0 absent.txt {ABSENTKEY}"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "get-absent-v4": [L("VERSION 4"), L("GET 0 absent.txt {ABSENTKEY}"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "get-present-v1": [L("VERSION 1"), L("GET 0 small.txt {KEY6}"), L("SUCCESS"), CLOSE],
    "get-present-v0": [L("GET 0 small.txt {KEY6}"), L("SUCCESS"), CLOSE],
    "get-offset-v1": [L("VERSION 1"), L("GET 3 small.txt {KEY6}"), L("SUCCESS"), CLOSE],
    "get-offset-past-end": [L("VERSION 1"), L("GET 100 small.txt {KEY6}"), L("SUCCESS"), CLOSE],
    "get-present-failure": [L("VERSION 1"), L("GET 0 small.txt {KEY6}"), L("FAILURE"),
                            L("CHECKPRESENT {KEY6}"), CLOSE],
    "put-v1": [L("VERSION 1"), L("PUT new.txt {NEWKEY}"), RAW(b"DATA 4\nnew\n"),
               L("VALID"), L("CHECKPRESENT {NEWKEY}"), CLOSE],
    "put-invalid-v1": [L("VERSION 1"), L("PUT new.txt {NEWKEY}"), RAW(b"DATA 4\nnew\n"),
                       L("INVALID"), L("CHECKPRESENT {NEWKEY}"), CLOSE],
    "put-wrong-content-v1": [L("VERSION 1"), L("PUT new.txt {NEWKEY}"), RAW(b"DATA 4\nbad\n"),
                             L("VALID"), L("CHECKPRESENT {NEWKEY}"), CLOSE],
    "put-v4": [L("VERSION 4"), L("PUT new.txt {NEWKEY}"), RAW(b"DATA 4\nnew\n"),
               L("VALID"), L("CHECKPRESENT {NEWKEY}"), CLOSE],
    "put-already-have": [L("VERSION 1"), L("PUT small.txt {KEY6}"), CLOSE],
    "put-empty-filename": [L("VERSION 1"), L("PUT  {NEWKEY}"), RAW(b"DATA 4\nnew\n"),
                           L("VALID"), CLOSE],
    "unknown-command": [L("VERSION 1"), L("FROBNICATE 1 2 3"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "empty-line": [L("VERSION 1"), L(""), L("CHECKPRESENT {KEY6}"), CLOSE],
    "malformed-checkpresent": [L("VERSION 1"), L("CHECKPRESENT"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "malformed-get-offset": [L("VERSION 1"), L("GET x small.txt {KEY6}"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "valid-out-of-place": [L("VERSION 1"), L("VALID"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "success-out-of-place": [L("VERSION 1"), L("SUCCESS"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "auth-success-out-of-place": [L("VERSION 1"), L("AUTH-SUCCESS 00000000-0000-0000-0000-000000000000"),
                                  L("CHECKPRESENT {KEY6}"), CLOSE],
    "unlockcontent-without-lock": [L("VERSION 1"), L("UNLOCKCONTENT"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "client-error": [L("VERSION 1"), L("ERROR client gives up"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "long-line": [L("VERSION 1"), L(BIGLINE), L("CHECKPRESENT {KEY6}"), CLOSE],
    # line lengths below count the bytes before the terminating newline
    "line-32767": [L("VERSION 1"), L("CHECKPRESENT " + "X" * (32767 - 13)), L("CHECKPRESENT {KEY6}"), CLOSE],
    "line-32768": [L("VERSION 1"), L("CHECKPRESENT " + "X" * (32768 - 13)), L("CHECKPRESENT {KEY6}"), CLOSE],
    "line-32769": [L("VERSION 1"), L("CHECKPRESENT " + "X" * (32769 - 13)), L("CHECKPRESENT {KEY6}"), CLOSE],
    "key-with-slash": [L("VERSION 1"), L("CHECKPRESENT SHA256E-s6--ab/cd.txt"),
                       L("GET 0 x SHA256E-s6--ab/cd.txt"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "key-with-dotdot": [L("VERSION 1"), L("CHECKPRESENT .."), L("CHECKPRESENT SHA256E-s6--..%2F..%2Fetc"),
                        L("GET 0 x ../../../etc/passwd"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "put-key-with-slash": [L("VERSION 1"), L("PUT x SHA256E-s4--../../evil"), RAW(b"DATA 4\nnew\n"),
                           L("VALID"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "lockcontent-present": [L("VERSION 1"), L("LOCKCONTENT {KEY6}"), L("UNLOCKCONTENT"),
                            L("CHECKPRESENT {KEY6}"), CLOSE],
    "lockcontent-absent": [L("VERSION 1"), L("LOCKCONTENT {ABSENTKEY}"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "remove-absent": [L("VERSION 1"), L("REMOVE {ABSENTKEY}"), CLOSE],
    "bypass-v4": [L("VERSION 4"), L("BYPASS 00000000-0000-0000-0000-000000000001"),
                  L("CHECKPRESENT {KEY6}"), CLOSE],
    "bypass-v1": [L("VERSION 1"), L("BYPASS 00000000-0000-0000-0000-000000000001"),
                  L("CHECKPRESENT {KEY6}"), CLOSE],
    "notifychange-v1": [L("VERSION 1"), L("NOTIFYCHANGE"), WAIT(2), CLOSE],
    "connect-upload-pack": [L("VERSION 1"), L("CONNECT git-upload-pack"), WAIT(1),
                            RAW(b"DATA 4\n0000"), WAIT(2), CLOSE],
    "connect-bogus-service": [L("VERSION 1"), L("CONNECT git-frobnicate"), L("CHECKPRESENT {KEY6}"), CLOSE],
    "eof-immediately": [CLOSE],
}


def expand(s):
    def sub(text):
        out = text
        for k, v in os.environ.items():
            if k.startswith("REC_VAR_"):
                out = out.replace("{" + k[len("REC_VAR_"):] + "}", v)
        return out
    if isinstance(s, bytes):
        return sub(s.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    return sub(s)


def script_mode(args):
    name, outfile = args[0], args[1]
    assert args[2] == "--"
    cmd = args[3:]
    steps = SCRIPTS[name]
    tr = Transcript(outfile, parse_subst())
    tr.header("name", name)
    for h in os.environ.get("REC_HEADER", "").split(";"):
        if ":" in h:
            k, v = h.split(":", 1)
            tr.header(k.strip(), v.strip())
    tr.header("command", " ".join(shlex.quote(c) for c in cmd))
    tr.header("mode", "hand-written session; each step sent after the server went quiet")
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    cparser = StreamParser(tr, b"C")
    sparser = StreamParser(tr, b"S")
    last_activity = [time.monotonic()]
    lock = threading.Lock()

    def spump():
        fd = child.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            with lock:
                last_activity[0] = time.monotonic()
            sparser.feed(chunk)
        sparser.eof()

    def epump():
        stderr_pump(child.stderr.fileno(), tr, passthrough=False)

    ts = threading.Thread(target=spump)
    te = threading.Thread(target=epump)
    ts.start(); te.start()

    def settle(first_timeout=1.5, idle=0.4, maxwait=15.0):
        start = time.monotonic()
        while True:
            time.sleep(0.05)
            if child.poll() is not None and not ts.is_alive():
                return
            now = time.monotonic()
            with lock:
                la = last_activity[0]
            if la > start:
                if now - la >= idle:
                    return
            elif now - start >= first_timeout:
                return
            if now - start >= maxwait:
                return

    # wait for the greeting (AUTH-SUCCESS)
    settle(first_timeout=10.0, idle=0.5)
    closed = False
    for kind, val in steps:
        if child.poll() is not None:
            tr.comment(f"server exited before step {kind}")
            break
        if kind == "wait":
            time.sleep(val)
            continue
        if kind == "close":
            closed = True
            try:
                child.stdin.close()
            except OSError:
                pass
            cparser.eof()
            break
        data = expand(val).encode() + b"\n" if kind == "line" else expand(val)
        cparser.feed(data)
        try:
            write_all(child.stdin.fileno(), data)
        except OSError:
            tr.comment("write to server failed (server closed its stdin)")
            break
        with lock:
            last_activity[0] = time.monotonic() - 0.0001
        settle()
    if not closed:
        try:
            child.stdin.close()
        except OSError:
            pass
        cparser.eof()
    try:
        rc = child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        tr.comment("server did not exit within 20s of client EOF; killed")
        child.kill()
        rc = child.wait()
    ts.join(); te.join()
    tr.header("server-exit", str(rc))
    tr.close()
    return 0


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "ssh":
        return ssh_mode(args)
    if mode == "script":
        return script_mode(args)
    if mode == "list-scripts":
        print("\n".join(SCRIPTS))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
