#!/usr/bin/env python3
"""The ledger check of ../shared/checks/check.py, on a log filled by log_load instead of `allot fair run`
(which does not exist yet): `allot audit export` re-hashed by the independent RFC 6962 tree of
../shared/anchors/rfc6962.py must equal the root and size in `allot audit checkpoint`, whose Ed25519
signed-note line must verify with `allot audit pubkey` -- parsed exactly as check.py parses them.

Run from the project's root, with the anchors' Python (it has `cryptography`):
  ~/.cache/allot-anchors/venv/bin/python benches/scripts/ledger_check.py [--entries 5000]
ALLOT_BIN / LOG_LOAD_BIN use those binaries instead of building target/release/{allot,log_load}.
Exit 0: root matches and signature verifies; 1: they do not; 2: could not run.
"""
import argparse, base64, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ANCHORS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "anchors"))


def die(msg, code=2):
    print(msg); sys.exit(code)


def sh(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def binaries():
    if os.environ.get("ALLOT_BIN") and os.environ.get("LOG_LOAD_BIN"):
        return os.environ["ALLOT_BIN"], os.environ["LOG_LOAD_BIN"]
    r = sh(["cargo", "build", "--release", "--quiet", "-p", "allot-service", "-p", "allot-benches",
            "--bin", "allot", "--bin", "log_load"])
    if r.returncode: die("cargo build failed:\n" + r.stderr[-1500:])
    return os.path.abspath("target/release/allot"), os.path.abspath("target/release/log_load")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", type=int, default=5000)
    a = p.parse_args()
    sys.path.insert(0, ANCHORS); import rfc6962
    allot, log_load = binaries()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        # Single appends from several writers, then all-or-nothing batches (as a run logs outcomes).
        for extra in (["--writers", "8"], ["--writers", "2", "--batch", "50"]):
            r = sh([log_load, "--data", data, "--entries", str(a.entries // 2)] + extra)
            if r.returncode: die("log_load failed: " + r.stderr[-400:])
        # check.py's ledger, from here on.
        ex = sh([allot, "audit", "export", "--data", data]); cp = sh([allot, "audit", "checkpoint", "--data", data])
        pk = sh([allot, "audit", "pubkey", "--data", data])
        if ex.returncode or cp.returncode or pk.returncode: die("allot audit export/checkpoint/pubkey failed", 1)
        leaves = [bytes.fromhex(l.split()[1]) for l in ex.stdout.splitlines() if l.strip()]
        body, _, sigs = cp.stdout.partition("\n\n")
        lines = body.split("\n")
        size, root = int(lines[1]), base64.b64decode(lines[2])
        ours = rfc6962.mth(leaves)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        name, kid, kb = pk.stdout.strip().split("+", 2)
        key = base64.b64decode(kb)
        sig_ok = False
        for line in sigs.strip().splitlines():
            parts = line.split(" ")
            if len(parts) == 3 and parts[0] == "\u2014" and parts[1] == name:
                raw = base64.b64decode(parts[2])
                try:
                    Ed25519PublicKey.from_public_bytes(key[1:]).verify(raw[4:], (body + "\n").encode()); sig_ok = raw[:4].hex() == kid
                except Exception: sig_ok = False
        match = size == len(leaves) and ours == root
        vf = sh([allot, "audit", "verify", "--data", data])
    print(f"entries={len(leaves)} checkpoint size={size} independent root matches={match} signature verifies={sig_ok} "
          f"allot audit verify {'ok' if vf.returncode == 0 else 'FAILED: ' + vf.stderr.strip()}")
    print(f"ledger: root {'matches' if match else 'DIFFERS'}, signature {'verifies' if sig_ok else 'FAILS'}")
    sys.exit(0 if match and sig_ok and vf.returncode == 0 else 1)


if __name__ == "__main__":
    main()
