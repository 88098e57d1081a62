#!/usr/bin/env python3
"""Make Tests/SharedTests/Fixtures/wormhole-vectors.json with the reference implementation.

Run with the venv that has magic-wormhole 0.24 and spake2 0.9:

    .venv/bin/python scripts/wormhole-vectors.py > Tests/SharedTests/Fixtures/wormhole-vectors.json

Everything is deterministic: SPAKE2's entropy (the 64 bytes `entropy_f(64)` returns) comes
from SHA-512 of a fixed seed string, and SecretBox nonces are fixed. The Swift tests
(Tests/SharedTests/Wormhole/) read this file and compare byte for byte.
"""
import hashlib
import json
import sys
from binascii import hexlify

import spake2
from spake2 import SPAKE2_Symmetric
from spake2.ed25519_basic import L, scalar_to_bytes
from spake2.parameters.ed25519 import ParamsEd25519
from nacl.secret import SecretBox

import wormhole
from wormhole._key import derive_key, derive_phase_key
from wormhole.util import to_bytes, dict_to_bytes
from wormhole import transit
from wormhole._wordlist import raw_words, PGPWordList

TRANSIT_PURPOSE = b"lothar.com/wormhole/text-or-file-xfer/transit-key"


def h(b):
    return hexlify(b).decode("ascii")


def entropy_for(seed):
    data = hashlib.sha512(seed.encode("utf-8")).digest()

    def entropy_f(n):
        assert n == 64, n
        return data
    return data, entropy_f


def spake_case(appid, code_a, code_b, seed_a, seed_b):
    ent_a, fa = entropy_for(seed_a)
    ent_b, fb = entropy_for(seed_b)
    a = SPAKE2_Symmetric(to_bytes(code_a), idSymmetric=to_bytes(appid), entropy_f=fa)
    b = SPAKE2_Symmetric(to_bytes(code_b), idSymmetric=to_bytes(appid), entropy_f=fb)
    msg_a = a.start()
    msg_b = b.start()
    key_a = a.finish(msg_b)
    key_b = b.finish(msg_a)
    g = ParamsEd25519.group
    return {
        "appid": appid,
        "code_A": code_a,
        "code_B": code_b,
        "password_A_hex": h(to_bytes(code_a)),
        "pw_scalar_A_le_hex": h(g.scalar_to_bytes(a.pw_scalar)),
        "pw_scalar_B_le_hex": h(g.scalar_to_bytes(b.pw_scalar)),
        "entropy_A_hex": h(ent_a),
        "entropy_B_hex": h(ent_b),
        "x_A_le_hex": h(g.scalar_to_bytes(a.xy_scalar)),
        "x_B_le_hex": h(g.scalar_to_bytes(b.xy_scalar)),
        "msg_A_hex": h(msg_a),
        "msg_B_hex": h(msg_b),
        "key_A_hex": h(key_a),
        "key_B_hex": h(key_b),
        "pake_body_A_hex": h(dict_to_bytes({"pake_v1": h(msg_a)})),
    }


class _Collect:
    def __init__(self):
        self.data = b""

    def write(self, b):
        self.data += b


def transit_records(tk):
    """Wire records made by magic-wormhole's own transit.Connection.send_record (big-endian
    counter nonces, 4-byte big-endian length), both directions."""
    out = []
    for direction, purpose in (("sender", b"transit_record_sender_key"), ("receiver", b"transit_record_receiver_key")):
        conn = transit.Connection.__new__(transit.Connection)
        conn.send_box = SecretBox(derive_key(tk, purpose))
        conn.send_nonce = 0
        conn.transport = _Collect()
        plaintexts = [b"first record", b"", b"x" * 300] if direction == "sender" else \
            [dict_to_bytes({"ack": "ok", "sha256": hashlib.sha256(b"first record" + b"x" * 300).hexdigest()})]
        wire = []
        for p in plaintexts:
            before = len(conn.transport.data)
            transit.Connection.send_record(conn, p)
            wire.append(h(conn.transport.data[before:]))
        out.append({"direction": direction, "plaintexts_hex": [h(p) for p in plaintexts], "wire_hex": wire})
    return out


def key_schedule(key, side_a, side_b, nonce):
    out = {
        "key_hex": h(key),
        "verifier_hex": h(derive_key(key, b"wormhole:verifier")),
        "side_A": side_a,
        "side_B": side_b,
        "phase_keys": [],
        "boxes": [],
    }
    for side in (side_a, side_b):
        for phase in ("pake", "version", "0", "1", "17"):
            out["phase_keys"].append({"side": side, "phase": phase,
                                      "key_hex": h(derive_phase_key(key, side, phase))})
    for side, phase, plaintext in ((side_a, "version", dict_to_bytes({"app_versions": {}})),
                                   (side_b, "0", dict_to_bytes({"offer": {"message": "hello \u00e9\u4e2d\nline2"}})),
                                   (side_a, "1", b"")):
        pk = derive_phase_key(key, side, phase)
        box = SecretBox(pk).encrypt(plaintext, nonce)
        out["boxes"].append({"side": side, "phase": phase, "plaintext_hex": h(plaintext),
                             "nonce_hex": h(nonce), "body_hex": h(bytes(box))})
    tk = derive_key(key, TRANSIT_PURPOSE)
    out["transit"] = {
        "purpose": TRANSIT_PURPOSE.decode("ascii"),
        "transit_key_hex": h(tk),
        "sender_handshake_hex": h(transit.build_sender_handshake(tk)),
        "receiver_handshake_hex": h(transit.build_receiver_handshake(tk)),
        "relay_side": "0123456789abcdef",
        "relay_handshake_hex": h(transit.build_sided_relay_handshake(tk, "0123456789abcdef")),
        "record_key_sender_hex": h(derive_key(tk, b"transit_record_sender_key")),
        "record_key_receiver_hex": h(derive_key(tk, b"transit_record_receiver_key")),
    }
    out["transit"]["records"] = transit_records(tk)
    out["derive_key"] = [{"purpose_hex": h(p), "length": n, "out_hex": h(derive_key(key, p, n))}
                         for p, n in ((b"", 32), (b"x", 16), (b"annexd test purpose", 64))]
    return out


def main():
    g = ParamsEd25519.group
    cases = [
        spake_case("lothar.com/wormhole/text-or-file-xfer", "4-purple-sausages", "4-purple-sausages", "annexd A 1", "annexd B 1"),
        spake_case("git-annex.branchable.com/p2p-setup", "8-customer-blowtorch", "8-customer-blowtorch", "annexd A 2", "annexd B 2"),
        spake_case("lothar.com/wormhole/text-or-file-xfer", "0-", "0-", "annexd A 3", "annexd B 3"),
        spake_case("app/\u00e9", "12-caf\u0065\u0301-zulu", "12-caf\u00e9-zulu", "annexd A 4", "annexd B 4"),  # NFC makes these equal
        spake_case("lothar.com/wormhole/text-or-file-xfer", "4-purple-sausages", "4-purple-sausage", "annexd A 5", "annexd B 5"),  # wrong code
    ]
    assert cases[0]["key_A_hex"] == cases[0]["key_B_hex"]
    assert cases[3]["key_A_hex"] == cases[3]["key_B_hex"]
    assert cases[4]["key_A_hex"] != cases[4]["key_B_hex"]
    schedules = [
        key_schedule(bytes.fromhex(cases[0]["key_A_hex"]), "aaaaaaaaaa", "bbbbbbbbbb", bytes(range(24))),
        key_schedule(bytes.fromhex(cases[1]["key_A_hex"]), "b97173a676", "0f1e2d3c4b", bytes(24)),
    ]
    wl = PGPWordList()
    completions = []
    for prefix, n in (("", 2), ("pur", 2), ("purple-", 2), ("purple-sa", 2), ("a", 3), ("adroitness-a", 3),
                      ("adroitness-aardvark-", 3), ("zz", 2), ("Pur", 2), ("x-y-z", 2)):
        completions.append({"prefix": prefix, "num_words": n, "completions": sorted(wl.get_completions(prefix, n))})
    doc = {
        "generator": "scripts/wormhole-vectors.py",
        "versions": {"magic-wormhole": wormhole.__version__, "spake2": spake2.__version__},
        "elements": {
            "M_hex": h(g.arbitrary_element(b"M").to_bytes()),
            "N_hex": h(g.arbitrary_element(b"N").to_bytes()),
            "S_hex": h(g.arbitrary_element(b"symmetric").to_bytes()),
            "empty_seed_hex": h(g.arbitrary_element(b"").to_bytes()),
            "L_hex": "%x" % L,
        },
        "spake2": cases,
        "key_schedule": schedules,
        "words": [[raw_words[k][0], raw_words[k][1]] for k in sorted(raw_words)],
        "completions": completions,
    }
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
