#!/usr/bin/env python3
"""Recomputes the commitment of closed application windows from the decision log alone.

Reads the log's entries (`allot audit export` prints `INDEX HEX` lines, HEX being an entry's
canonical bytes) and, for every `ApplicationsClosed` decision (or the one window named), folds the
window's `ApplicationSubmitted` and `ApplicationWithdrawn` decisions that precede it (the last
submission of each key, unless withdrawn after it), builds the canonical application set and
checks that its SHA-256 is the logged set digest and that its number of applications is the
logged count. Written from the entry layout in `engine/src/log/FORMAT.md` and the canonical forms
in `ARCHITECTURE.md` ("Application windows"), independently of allot's Rust code.

    allot audit export --data DATA > export.txt
    python3 window_digest.py export.txt [--window NAME]

Prints one line per window and `OK`; exits 1 if a digest or a count differs.
"""

import argparse
import hashlib
import json
import struct
import sys

APPLICATIONS_CLOSED = 0x0201
APPLICATION_SUBMITTED = 0x0207
APPLICATION_WITHDRAWN = 0x0208
FAIRS, SCHOOLS = 2, 3


class Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError(f"entry ends at byte {len(self.data)}, {n} more wanted at {self.at}")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack(">Q", self.take(8))[0]

    def bytes(self) -> bytes:
        return self.take(self.u32())

    def str(self) -> str:
        return self.bytes().decode("utf-8")


def parse_entry(data: bytes):
    """(index, kind, subject, payload reader) of an entry's canonical bytes."""
    r = Reader(data)
    version = r.u8()
    if version != 1:
        raise ValueError(f"entry encoding version {version}")
    index = r.u64()
    r.u64()  # time
    kind = r.u16()
    r.str()  # actor
    subject = r.str()
    return index, kind, subject, r


class Writer:
    def __init__(self):
        self.parts = []

    def u8(self, v: int):
        self.parts.append(struct.pack(">B", v))

    def u32(self, v: int):
        self.parts.append(struct.pack(">I", v))

    def u64(self, v: int):
        self.parts.append(struct.pack(">Q", v))

    def str(self, s: str):
        b = s.encode("utf-8")
        self.u32(len(b))
        self.parts.append(b)

    def digest(self) -> bytes:
        return hashlib.sha256(b"".join(self.parts)).digest()


def by_id(rows, key="id"):
    """Rows sorted by id, compared as UTF-8 bytes."""
    return sorted(rows, key=lambda row: row[key].encode("utf-8"))


def school_set(items):
    """(digest, students) of a school window's items: `{"school": ...}`, `{"student": ...}`,
    `{"priority": ...}`."""
    schools = by_id([v for t, v in items if t == "school"])
    students = by_id([v for t, v in items if t == "student"])
    priorities = [v for t, v in items if t == "priority"]
    school_at = {s["id"]: i for i, s in enumerate(schools)}
    student_at = {s["id"]: i for i, s in enumerate(students)}
    lottery_given = all(s.get("lottery") is not None for s in students)
    w = Writer()
    w.str("allot/schools/input/v1")
    w.u32(len(schools))
    for s in schools:
        w.str(s["id"])
        w.u32(s["capacity"])
    w.u8(1 if lottery_given else 0)
    w.u32(len(students))
    for s in students:
        w.str(s["id"])
        if lottery_given:
            w.u64(s["lottery"])
        w.u32(len(s["choices"]))
        for c in s["choices"]:
            w.u32(school_at[c])
    rows = sorted((school_at[p["school"]], student_at[p["student"]], p["priority"]) for p in priorities)
    w.u32(len(rows))
    for row in rows:
        for v in row:
            w.u32(v)
    reserves = sorted(
        (school_at[s["id"]], cls, seats) for s in schools for cls, seats in s.get("reserves", [])
    )
    w.u32(len(reserves))
    for row in reserves:
        for v in row:
            w.u32(v)
    return w.digest(), len(students)


def fair_set(items):
    """(digest, applicants) of a fair window's items: `{"pool": ...}`, `{"applicant": ...}`."""
    pools = [v for t, v in items if t == "pool"]
    applicants = by_id([v for t, v in items if t == "applicant"])
    fairs = {}
    for p in pools:
        fairs.setdefault(p["fair"], {"district": p["district"], "pools": []})["pools"].append(p)
    fair_ids = sorted(fairs, key=lambda f: f.encode("utf-8"))
    fair_at = {f: i for i, f in enumerate(fair_ids)}
    lottery_given = all(a.get("lottery") is not None for a in applicants)
    w = Writer()
    w.str("allot/fairs/input/v1")
    w.u32(len(fair_ids))
    for f in fair_ids:
        w.str(f)
        w.str(fairs[f]["district"])
        ps = sorted(fairs[f]["pools"], key=lambda p: p["category"].encode("utf-8"))
        w.u32(len(ps))
        for p in ps:
            w.str(p["category"])
            w.u32(p["stalls"])
    w.u8(1 if lottery_given else 0)
    w.u32(len(applicants))
    for a in applicants:
        w.str(a["id"])
        w.str(a["category"])
        w.u8(a["tier"])
        if lottery_given:
            w.u64(a["lottery"])
        w.u32(len(a["choices"]))
        for c in a["choices"]:
            w.u32(fair_at[c])
    return w.digest(), len(applicants)


def closed_windows(entries):
    """For each window closed in `entries` (index, bytes), in log order: (domain, window, logged
    applications, logged digest, recomputed digest, recomputed applications)."""
    open_items = {}  # (domain, window) -> {key: (type, value) or None}
    out = []
    for _, data in entries:
        index, kind, subject, r = parse_entry(data)
        if kind == APPLICATION_SUBMITTED:
            domain, window = r.u8(), r.str()
            item = json.loads(r.bytes())
            ((kind_name, value),) = item.items()
            open_items.setdefault((domain, window), {})[subject] = (kind_name, value)
        elif kind == APPLICATION_WITHDRAWN:
            domain, window = r.u8(), r.str()
            open_items.setdefault((domain, window), {}).pop(subject, None)
        elif kind == APPLICATIONS_CLOSED:
            domain, applications, digest = r.u8(), r.u64(), r.take(32)
            # A window closed twice commits the same set: the first commitment stands.
            items = open_items.pop((domain, subject), None)
            if items is None:
                continue
            items = list(items.values())
            computed, count = (school_set if domain == SCHOOLS else fair_set)(items)
            out.append((domain, subject, applications, digest, computed, count))
    return out


def read_export(path):
    with open(path) if path != "-" else sys.stdin as f:
        for line in f:
            if line.strip():
                index, hexdata = line.split()
                yield int(index), bytes.fromhex(hexdata)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="`allot audit export` output, or - for stdin")
    parser.add_argument("--window", help="check only this window (default: every closed one)")
    args = parser.parse_args()
    windows = closed_windows(read_export(args.export))
    if args.window:
        windows = [w for w in windows if w[1] == args.window]
        if not windows:
            sys.exit(f"window {args.window} is not closed in the log")
    failed = False
    for domain, window, applications, logged, computed, count in windows:
        ok = logged == computed and applications == count
        failed |= not ok
        print(
            f"{'fairs' if domain == FAIRS else 'schools'} window {window}: {count} applications, "
            f"digest {computed.hex()[:16]} {'matches' if ok else 'DIFFERS from'} the logged "
            f"{logged.hex()[:16]} ({applications} applications)"
        )
    if failed:
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
