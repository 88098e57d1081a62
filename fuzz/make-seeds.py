#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/seed-* for annexd's fuzz targets
(Sources/FuzzTargets) from the recorded P2P transcripts, the SPAKE2 test vector,
contrib/openrpc.json and hand-written valid messages. Re-run after changing a target's
input format: ./fuzz/make-seeds.py (from the repository root; needs PyNaCl, in .venv).
Files not named seed-* (reproducers of fixed crashes) are left alone."""
import base64, glob, hashlib, hmac, json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MAX = 4096
written = {}


def seed(target, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX:
        return
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    written[target] = written.get(target, 0) + 1


def clean():
    for path in glob.glob(os.path.join(CORPUS, "*", "seed-*")):
        os.remove(path)


# --- P2P: transcripts ------------------------------------------------------------
TOKEN = "0123456789abcdef" * 8
CLIENT = "22222222-2222-4222-8222-222222222222"


def transcript(path):
    """(text lines of both directions, client byte stream)"""
    lines, client = [], b""
    for rec in open(path, encoding="utf-8").read().split("\n"):
        tag, val = rec[:2], rec[3:]
        if tag in ("C:", "S:"):
            lines.append(val.encode())
        if tag == "C:":
            client += val.encode() + b"\n"
        elif tag == "C%":
            client += base64.b64decode(val) + b"\n"
        elif tag in ("C+", "C~"):
            client += base64.b64decode(val)
    return lines, client


def p2p():
    for path in sorted(glob.glob(os.path.join(ROOT, "Tests/TranscriptSupport/transcripts/*/*.transcript"))):
        lines, client = transcript(path)
        seed("p2p-codec", b"\n".join(lines) + b"\n")
        seed("p2p-server-authed", b"\x55" + client)
        seed("p2p-server-authed", b"\xaa" + client)
        for l in lines:
            for word in l.split(b" "):
                if b"--" in word:
                    seed("annex-key", word)
    key = "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt"
    every = [f"AUTH {CLIENT} {TOKEN}", f"AUTH-SUCCESS {CLIENT}", "AUTH-FAILURE", "VERSION 4", "BYPASS a b",
             "CONNECT git-upload-pack", "CONNECTDONE 0", "NOTIFYCHANGE", "CHANGED refs/heads/main",
             f"CHECKPRESENT {key}", f"LOCKCONTENT {key}", "UNLOCKCONTENT", f"REMOVE {key}",
             f"REMOVE-BEFORE 1700000000 {key}", "GETTIMESTAMP", "TIMESTAMP 1700000000",
             f"GET 0 small.txt {key}", f"PUT small.txt {key}", "PUT-FROM 3", "ALREADY-HAVE",
             "ALREADY-HAVE-PLUS u1 u2", "SUCCESS", "SUCCESS-PLUS u1", "FAILURE", "FAILURE-PLUS u1",
             "DATA 6", "DATA-PRESENT", "VALID", "INVALID", "ERROR something went wrong"]
    for line in every:
        seed("p2p-codec", line + "\n")
    auth = f"AUTH {CLIENT} {TOKEN}\n"
    seed("p2p-server-preauth", b"\x00" + auth.encode() + b"VERSION 4\nCHECKPRESENT " + key.encode() + b"\n")
    seed("p2p-server-preauth", b"\x00" + f"AUTH {CLIENT} {'f' * 128}\nAUTH {CLIENT} x\nAUTH {CLIENT} y\n".encode())
    seed("p2p-server-preauth", b"\x00VERSION 1\n")
    seed("p2p-server-preauth", b"\x80" + auth.encode() + f"VERSION 4\nPUT f {key}\nDATA 6\nhello\nVALID\n".encode())
    seed("p2p-server-authed", b"\x7f" + f"VERSION 4\nPUT f {key}\nDATA 6\nhello\nVALID\nGET 2 f {key}\nSUCCESS\n"
         f"LOCKCONTENT {key}\nUNLOCKCONTENT\nREMOVE-BEFORE 1 {key}\nGETTIMESTAMP\nNOTIFYCHANGE\nCONNECT git-upload-pack\n".encode())
    seed("p2p-server-authed", b"\xff" + f"VERSION 4\nPUT f {key}\nDATA-PRESENT\nREMOVE {key}\nCONNECT git-receive-pack\n".encode())
    for k in [key, "WORM-s1-m2--name", "SHA256-s0-S1024-C1--" + "a" * 64, "MD5E-s1--x.tar.gz",
              "URL--http&c%%example.com%x", "SHA1--" + "b" * 40, "BLAKE2B256E-s10--" + "c" * 64 + ".bin"]:
        seed("annex-key", k)


# --- RPC -------------------------------------------------------------------------
def sample(schema, name):
    t = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if t == "array":
        return [sample(schema.get("items", {}), name)]
    return {"string": "/tmp/repo" if name in ("repo", "path") else "x", "integer": 1, "number": 1.5,
            "boolean": True, "object": {}}.get(t, None)


def rpc():
    doc = json.load(open(os.path.join(ROOT, "contrib/openrpc.json")))
    batch = []
    for i, m in enumerate(doc["methods"]):
        params = {p["name"]: sample(p["schema"], p["name"]) for p in m["params"] if p.get("required")}
        full = {p["name"]: sample(p["schema"], p["name"]) for p in m["params"]}
        req = {"jsonrpc": "2.0", "id": i, "method": m["name"], "params": params}
        seed("rpc", json.dumps(req) + "\n")
        seed("rpc", json.dumps({**req, "params": full}) + "\r\n")
        batch.append(req)
    seed("rpc", json.dumps(batch[:5]) + "\n" + json.dumps({"jsonrpc": "2.0", "method": "rpc.discover"}) + "\n")
    for text in ['{"jsonrpc":"2.0","id":"a","method":"rpc.discover"}', '[]', '[1,2]', 'not json',
                 '{"jsonrpc":"2.0","id":null,"method":"daemon.status","extra":1}',
                 '{"jsonrpc":"1.0","id":1,"method":"x"}', '{"jsonrpc":"2.0","id":1.5e3,"method":"repo.list","params":[]}',
                 '{"jsonrpc":"2.0","id":1,"method":"repo.add","params":{"path":"\\u0000\\ud800"}}',
                 '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]']:
        seed("rpc", text + "\n")


# --- Tor -------------------------------------------------------------------------
def tor():
    replies = [
        "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/run/tor/control.authcookie\"\r\n250-VERSION Tor=\"0.4.8.16\"\r\n250 OK\r\n",
        "250 AUTHCHALLENGE SERVERHASH=" + "AB" * 32 + " SERVERNONCE=" + "cd" * 32 + "\r\n",
        "250-ServiceID=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz1234\r\n250-PrivateKey=ED25519-V3:" + "A" * 86 + "==\r\n250 OK\r\n",
        "250-version=0.4.8.16\r\n250+config-text=\r\nSocksPort 0\r\n..dotted\r\n.\r\n250 OK\r\n",
        "250-ControlSocket=/run/tor/control\r\n250-SocksPort\r\n250 OK\r\n",
        "650 HS_DESC UPLOADED abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz1234 UNKNOWN $AAAA~relay\r\n",
        "650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\"\r\n",
        "515 Authentication failed: Wrong length on authentication cookie.\r\n",
        "552 Unrecognized option: Unknown option 'Foo'.  Failing.\r\n250 OK\r\n650-CIRC 1 BUILT\r\n650 OK\r\n",
    ]
    for r in replies:
        seed("tor-control", r)
    seed("tor-control", "".join(replies))
    torrcs = [
        "SocksPort 9050\nControlPort 9051\n",
        "# comment\n\nHiddenServiceDir /var/lib/tor/hs/\nHiddenServicePort 80 127.0.0.1:8080\nHiddenServiceVersion 3\n",
        "HiddenServiceDir /var/lib/tor/tor-annex_1000_abc\r\nHiddenServicePort 5000 unix:\"/var/lib/tor-annex/1000_abc/s\"\r\n",
        "ControlSocket /run/tor/control GroupWritable RelaxDirModeCheck\nControlSocketsGroupWritable 1\nCookieAuthentication 1\nCookieAuthFileGroupReadable 1\nCookieAuthFile /run/tor/control.authcookie\n",
        "ExitPolicy reject *:25, \\\n  reject *:119 # continued\nNickname \"quoted \\\"name\\\"\"\n%include /etc/tor/torrc.d/*.conf\n",
        "CookieAuthentication 0\nno newline at the end",
        "\xff\xfe invalid utf-8 \x00 line\n",
    ]
    if os.path.exists("/etc/tor/torrc"):
        torrcs.append(open("/etc/tor/torrc", "rb").read().decode("latin-1")[:MAX])
    for t in torrcs:
        seed("torrc", t.encode("latin-1"))
    uuid = "d1b7c3a4-2f6e-4b8a-9c0d-1e2f3a4b5c6d"
    for args in [
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid, "--port", "5000"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid, "--torrc", "/etc/tor/torrc",
         "--tor-data-root", "/var/lib/tor", "--socket-root", "/var/lib/tor-annex", "--reload-command", "systemctl reload tor", "--timeout", "30"],
        ["remove-hidden-service", "--uid", "0", "--repo-uuid", uuid, "--defaults-torrc", "/usr/share/tor/tor-service-defaults-torrc"],
        ["enable-control-socket", "--group", "debian-tor", "--control-socket", "/run/tor/control"],
        ["--help"], ["add-hidden-service", "--uid", "1000", "--uid", "1001"],
    ]:
        seed("helper-args", "\x00".join(args))


# --- Wormhole --------------------------------------------------------------------
def hkdf(ikm, info, n=32):
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def wormhole():
    import nacl.secret, nacl.utils
    v = json.load(open(os.path.join(ROOT, "Tests/SharedTests/Fixtures/wormhole-vectors.json")))["spake2"][0]
    key = bytes.fromhex(v["key_B_hex"])

    def phase_key(side, phase):
        return hkdf(key, b"wormhole:phase:" + hashlib.sha256(side.encode()).digest() + hashlib.sha256(phase.encode()).digest())

    def sealed(side, phase, plaintext, n):
        box = nacl.secret.SecretBox(phase_key(side, phase)).encrypt(plaintext, bytes([n]) * 24)
        return {"type": "message", "side": side, "phase": phase, "body": bytes(box).hex()}

    pake = {"type": "message", "side": "bbbbbbbbbb", "phase": "pake",
            "body": json.dumps({"pake_v1": v["msg_B_hex"]}).encode().hex()}
    welcome = {"type": "welcome", "welcome": {"motd": "hi"}}
    session = [welcome, {"type": "claimed", "mailbox": "mb"}, {"type": "ack"}, pake,
               sealed("bbbbbbbbbb", "version", b'{"app_versions": {}}', 1),
               sealed("bbbbbbbbbb", "0", b'{"offer": {"message": "hi"}}', 2),
               sealed("bbbbbbbbbb", "1", b'{"answer": {"message_ack": "ok"}}', 3),
               {"type": "released"}, {"type": "closed"}]
    seed("mailbox", "\n".join(json.dumps(m) for m in session))
    seed("mailbox", "\n".join(json.dumps(m) for m in [welcome, {"type": "claimed", "mailbox": "mb"},
                                                      sealed("bbbbbbbbbb", "1", b"early", 4), pake,
                                                      sealed("cccccccccc", "0", b"wrong side", 5)]))
    seed("mailbox", "\n".join(json.dumps(m) for m in [{"type": "welcome", "welcome": {"error": "go away"}}]))
    seed("mailbox", "\n".join(json.dumps(m) for m in [welcome, {"type": "nameplates", "nameplates": [{"id": "4"}]},
                                                      {"type": "error", "error": "crowded", "orig": {}}]))
    seed("mailbox", "\n".join(json.dumps(m) for m in [welcome, {"type": "claimed", "mailbox": "mb"},
                                                      {**pake, "body": json.dumps({"pake_v1": v["msg_A_hex"]}).encode().hex()}]))
    seed("spake2", bytes.fromhex(v["msg_B_hex"]))
    seed("spake2", bytes.fromhex(v["msg_A_hex"]))
    seed("spake2", bytes.fromhex(v["entropy_B_hex"]) + bytes.fromhex(v["msg_B_hex"]))
    seed("spake2", b"A" + bytes(32))
    for mode in (0, 2, 4, 6, 10, 18):
        seed("transit", bytes([mode]) + b"hello\xffworld\xff\xff" + bytes(range(40)))
    seed("transit", b"\x02transit receiver " + b"0" * 64 + b" ready\n\ngo\n")


clean()
p2p()
rpc()
tor()
wormhole()
for t in sorted(written):
    print(f"{t}: {len(os.listdir(os.path.join(CORPUS, t)))} files")
