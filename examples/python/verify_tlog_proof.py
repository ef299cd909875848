#!/usr/bin/env python3
"""Verifies a c2sp.org/tlog-proof offline, from the C2SP specs alone (tlog-proof, signed-note,
tlog-checkpoint, tlog-cosignature) and RFC 9162, independently of allot's Rust code.

A proof is a citizen's receipt: `allot audit prove N --cosigned --tlog-proof` writes one, with the
entry's bytes as its extra data. This checks the log's Ed25519 signature on the checkpoint, at
least QUORUM valid v1 cosignatures by the given witnesses, and the entry's inclusion in the
checkpointed tree.

    pip install cryptography
    python3 verify_tlog_proof.py receipt.tlog-proof --log-key KEY [--witness-key KEY ...] \
        [--quorum K] [--entry-hex HEX]

Keys are verifier keys (`name+hexid+base64`) or files holding one. Prints `OK` and what was
proven; exits 1 with the reason otherwise.
"""

import argparse
import base64
import hashlib
import os
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEADER = "c2sp.org/tlog-proof@v1"
SIG_PREFIX = "\u2014 "


class Invalid(Exception):
    pass


def read_key(arg):
    text = open(arg).read().strip() if os.path.isfile(arg) else arg.strip()
    name, key_id, key = text.split("+", 2)
    raw = base64.b64decode(key, validate=True)
    kind, public = raw[0], raw[1:]
    if len(public) != 32 or kind not in (0x01, 0x04):
        raise Invalid(f"{name}: not an Ed25519 (1) or cosignature/v1 (4) key")
    # signed-note and tlog-cosignature: key id = SHA-256(name || "\n" || type || public key)[:4].
    expected = hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]
    if expected.hex() != key_id:
        raise Invalid(f"{name}: the key id does not match the key")
    return {"name": name, "id": expected, "kind": kind, "key": Ed25519PublicKey.from_public_bytes(public)}


def parse_proof(text):
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise Invalid("no blank line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise Invalid(f"the first line is not {HEADER}")
    lines = lines[1:]
    extra = None
    if lines and lines[0].startswith("extra "):
        extra = base64.b64decode(lines[0][6:], validate=True)
        lines = lines[1:]
    if not lines or not lines[0].startswith("index "):
        raise Invalid("no index line")
    digits = lines[0][6:]
    if not digits.isdigit() or (digits != "0" and digits.startswith("0")):
        raise Invalid("the index is not a decimal")
    path = [base64.b64decode(l, validate=True) for l in lines[1:]]
    if any(len(h) != 32 for h in path):
        raise Invalid("an inclusion proof line is not a SHA-256 hash")
    return extra, int(digits), path, note


def split_note(note):
    text, sep, sigs = note.rpartition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise Invalid("the checkpoint is not a signed note")
    signatures = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise Invalid("a signature line does not start with an em dash")
        name, _, b64 = line[len(SIG_PREFIX):].partition(" ")
        signatures.append((name, base64.b64decode(b64, validate=True)))
    return text + "\n", signatures


def verifies(key, text, raw):
    """Whether `raw` (key id || signature) is a valid signature by `key` on the note text."""
    if raw[:4] != key["id"]:
        return None
    if key["kind"] == 0x01:
        message, signature, stamp = text.encode(), raw[4:], None
    else:
        # tlog-cosignature v1: timestamp (u64 big-endian) then the signature over
        # "cosignature/v1\ntime <t>\n" + the checkpoint body.
        (stamp,) = struct.unpack(">Q", raw[4:12])
        message, signature = f"cosignature/v1\ntime {stamp}\n{text}".encode(), raw[12:]
    try:
        key["key"].verify(signature, message)
    except InvalidSignature:
        raise Invalid(f"the signature by {key['name']} does not verify")
    return stamp if stamp is not None else 0


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf, path):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        raise Invalid(f"index {index} is beyond the tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Invalid("the inclusion proof is too long")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("the inclusion proof is too short")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("proof")
    ap.add_argument("--log-key", required=True)
    ap.add_argument("--witness-key", action="append", default=[])
    ap.add_argument("--quorum", type=int)
    ap.add_argument("--entry-hex", help="the entry's bytes, if the proof carries none")
    args = ap.parse_args()
    try:
        log = read_key(args.log_key)
        witnesses = [read_key(k) for k in args.witness_key]
        quorum = args.quorum if args.quorum is not None else len(witnesses) // 2 + (1 if witnesses else 0)
        extra, index, path, note = parse_proof(open(args.proof).read())
        text, signatures = split_note(note)
        if not any(name == log["name"] and verifies(log, text, raw) is not None for name, raw in signatures):
            raise Invalid(f"the checkpoint has no signature by {log['name']}")
        origin, size, root = text.split("\n")[:3]
        if origin != log["name"]:
            raise Invalid(f"the checkpoint's origin {origin!r} is not the log's")
        cosigned = []
        for w in witnesses:
            stamps = [verifies(w, text, raw) for name, raw in signatures if name == w["name"]]
            stamps = [s for s in stamps if s is not None]
            if stamps:
                cosigned.append((w["name"], stamps[0]))
        if len(cosigned) < quorum:
            raise Invalid(f"{len(cosigned)} valid cosignature(s), {quorum} required")
        entry = bytes.fromhex(args.entry_hex) if args.entry_hex else extra
        if entry is None:
            raise Invalid("no entry: the proof has no extra data and no --entry-hex was given")
        computed = root_from_inclusion(index, int(size), leaf_hash(entry), path)
        if computed != base64.b64decode(root, validate=True):
            raise Invalid("the inclusion proof does not lead to the checkpoint's root")
    except (Invalid, ValueError, OSError) as e:
        print(f"INVALID: {e}")
        sys.exit(1)
    print(f"entry {index} ({len(entry)} bytes) is in the tree of size {size} of {origin}")
    for name, stamp in cosigned:
        print(f"cosigned by {name} at {stamp}")
    print("OK")


if __name__ == "__main__":
    main()
