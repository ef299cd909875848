#!/usr/bin/env python3
"""Books appointments on an allot server over gRPC, then proves that each booking is in the
decision log: an RFC 6962 inclusion proof checked against a C2SP signed checkpoint, whose Ed25519
signature is checked against the log's verifier key. Then submits a small fair window, checks
the receipt of each application the same way, amends one application and withdraws another,
reads an applicant's history, closes the window and recomputes its commitment (the digest of
the canonical set) from the log's entries alone (`window_digest.py`). Everything is verified here, in Python, from
the RFCs and the C2SP specifications, independently of allot's Rust code.

Stubs are generated at run time from ../../service/proto with grpcio-tools (no generated code is
checked in).

    pip install grpcio grpcio-tools cryptography
    python3 book_and_prove.py --server 127.0.0.1:50051 --token TOKEN \
        [--verifier-key-file DATA/log/verifier.key]

The verifier key should come from a trusted place (the data folder's `log/verifier.key`, or the
operator); without --verifier-key-file the key the server announces is used, which proves the
log's consistency with itself but not who signed it.

Prints one line per step, and `OK` at the end; exits 1 if any check fails.
"""

import argparse
import base64
import hashlib
import importlib
import json
import os
import sys
import tempfile
import uuid

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.join(HERE, "..", "..", "service", "proto")


def generate_stubs():
    """Compiles the allot protos into a temporary folder and imports them."""
    from grpc_tools import protoc

    try:
        import importlib.resources as resources

        well_known = str(resources.files("grpc_tools") / "_proto")
    except (ImportError, AttributeError):  # Python < 3.9
        import pkg_resources

        well_known = pkg_resources.resource_filename("grpc_tools", "_proto")
    out = tempfile.mkdtemp(prefix="allot-stubs-")
    protos = [
        os.path.join("allot", "v1", name)
        for name in sorted(os.listdir(os.path.join(PROTO_ROOT, "allot", "v1")))
        if name.endswith(".proto")
    ]
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ]
    )
    if code != 0:
        sys.exit(f"protoc failed ({code})")
    sys.path.insert(0, out)
    modules = {}
    for name in ["appointments", "audit", "fairs"]:
        modules[name] = importlib.import_module(f"allot.v1.{name}_pb2")
        modules[name + "_grpc"] = importlib.import_module(f"allot.v1.{name}_pb2_grpc")
    modules["common"] = importlib.import_module("allot.v1.common_pb2")
    return modules


# --- RFC 6962 / RFC 9162 -------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 section 2.1: MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 section 2.1: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, path: list) -> bytes:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    if index >= size:
        raise ValueError(f"index {index} is not below the tree size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            raise ValueError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree is deep")
    return r


# --- C2SP signed-note and tlog-checkpoint --------------------------------------------------------


def parse_verifier_key(text: str):
    """`<name>+<hex key id>+<base64(0x01 || Ed25519 public key)>` (golang.org/x/mod/sumdb/note)."""
    # The name and the hex key id have no `+`; the base64 key may.
    name, key_id_hex, key_b64 = text.strip().split("+", 2)
    raw = base64.b64decode(key_b64)
    if len(raw) != 33 or raw[0] != 0x01:
        raise ValueError("not an Ed25519 verifier key")
    public = raw[1:]
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4]
    if key_id.hex() != key_id_hex:
        raise ValueError("the verifier key's id does not match its name and key")
    return name, key_id, Ed25519PublicKey.from_public_bytes(public)


def verify_note(note: str, key) -> str:
    """Checks a signed note's Ed25519 signature by `key`; returns the signed text."""
    name, key_id, public = key
    text, sep, signatures = note.rpartition("\n\n")
    if not sep:
        raise ValueError("the note has no signature block")
    text += "\n"
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            raise ValueError(f"not a signature line: {line!r}")
        signer, sig_b64 = line[2:].split(" ")
        blob = base64.b64decode(sig_b64)
        if signer == name and blob[:4] == key_id:
            try:
                public.verify(blob[4:], text.encode())
            except InvalidSignature:
                raise ValueError("the checkpoint signature does not verify") from None
            return text
    raise ValueError(f"the note has no signature by {name}")


def parse_checkpoint(text: str):
    """C2SP tlog-checkpoint: origin, decimal tree size, base64 root hash, extension lines."""
    lines = text.split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2])
    if len(root) != 32:
        raise ValueError("the root hash is not 32 bytes")
    return origin, size, root


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("ALLOT_SERVER", "127.0.0.1:50051"))
    parser.add_argument("--token", default=os.environ.get("ALLOT_TOKEN"))
    parser.add_argument("--verifier-key-file")
    parser.add_argument("--patient", default="PY-1")
    parser.add_argument("--specialty", default="therapist")
    parser.add_argument("--bookings", type=int, default=5, help="appointments to book and prove")
    args = parser.parse_args()
    if not args.token:
        sys.exit("give --token (or ALLOT_TOKEN)")
    target = args.server.removeprefix("http://")

    pb = generate_stubs()
    channel = grpc.insecure_channel(target)
    metadata = [("authorization", f"Bearer {args.token}")]
    appointments = pb["appointments_grpc"].AppointmentsStub(channel)
    audit = pb["audit_grpc"].AuditStub(channel)
    ap = pb["appointments"]

    patient = ap.Patient(id=args.patient)
    patient.home.lat = 55.7558
    patient.home.lon = 37.6173
    found = appointments.FindSlots(
        ap.FindSlotsRequest(patient=patient, specialty=args.specialty, count=args.bookings),
        metadata=metadata,
        timeout=10,
    )
    if len(found.proposals) < args.bookings:
        sys.exit(f"{len(found.proposals)} free slots were proposed, {args.bookings} wanted")

    # One patient per booking (a patient never holds two overlapping appointments).
    booked = []
    for i, proposal in enumerate(found.proposals):
        who = ap.Patient(id=f"{args.patient}-{i}")
        who.home.CopyFrom(patient.home)
        appointment = appointments.Book(
            ap.BookRequest(
                slot_id=proposal.slot.id, patient=who, request_id=f"py-{args.patient}-{i}"
            ),
            metadata=metadata,
            timeout=10,
        ).appointment
        if appointment.status != ap.APPOINTMENT_STATUS_BOOKED:
            sys.exit(f"the appointment is not booked: {appointment}")
        print(
            f"booked: {appointment.id} in {appointment.slot.id} at {proposal.slot.clinic} "
            f"(score {proposal.score.total:.2f}), decision {appointment.log_index}"
        )
        booked.append(appointment)

    au = pb["audit"]
    if args.verifier_key_file:
        with open(args.verifier_key_file) as f:
            key_text = f.read()
    else:
        key_text = audit.GetCheckpoint(
            au.GetCheckpointRequest(), metadata=metadata, timeout=10
        ).verifier_key
    key = parse_verifier_key(key_text)

    for appointment in booked:
        proof = audit.GetInclusionProof(
            au.GetInclusionProofRequest(index=appointment.log_index),
            metadata=metadata,
            timeout=10,
        )
        # The entry is the booking: its decoded view names the appointment (the leaf is its
        # bytes). Decoded string fields are rendered quoted (JSON string syntax).
        entry = proof.entry
        fields = {
            f.name: json.loads(f.value) if f.value.startswith('"') else f.value
            for f in entry.decoded.fields
        }
        if entry.decoded.kind_name != "SlotBooked" or fields.get("appointment") != appointment.id:
            sys.exit(f"entry {entry.index} is not the booking: {entry.decoded}")

        signed_text = verify_note(proof.checkpoint.note, key)
        origin, size, root = parse_checkpoint(signed_text)
        if size != proof.tree_size:
            sys.exit(f"the proof is for size {proof.tree_size}, the checkpoint is of size {size}")
        computed = root_from_inclusion_proof(
            appointment.log_index, size, leaf_hash(entry.data), list(proof.path)
        )
        if computed != root:
            sys.exit("the inclusion proof does not lead to the signed root")
        print(
            f"proved: {appointment.id} is entry {appointment.log_index} of the tree of size "
            f"{size} ({len(proof.path)} hashes), checkpoint {origin} signed by {key[0]}"
        )
    prove_receipts(pb, channel, metadata, key)
    print("OK")


def prove_receipts(pb, channel, metadata, key):
    """Submits a small fair window (one stall pool, one application) and checks the receipt of
    each item: its leaf hash is the hash of the logged entry, and the entry is included in a
    signed checkpoint."""
    fr, au = pb["fairs"], pb["audit"]
    fairs = pb["fairs_grpc"].FairsStub(channel)
    audit = pb["audit_grpc"].AuditStub(channel)
    window = f"py-{uuid.uuid4().hex[:12]}"
    request = fr.SubmitFairApplicationsRequest(
        window=window,
        pools=[fr.StallPool(fair="PY-F1", district="PY-D1", category="food", stalls=1)],
        applicants=[
            fr.FairApplicant(id="PY-A1", category="food", tier=0, lottery=1, choices=["PY-F1"])
        ],
    )
    answer = fairs.SubmitApplications(iter([request]), metadata=metadata, timeout=10)
    keys = sorted(r.key for r in answer.receipts)
    if keys != ["applicant:PY-A1", "pool:PY-F1/food"]:
        sys.exit(f"the receipts name {keys}")
    # Sign a checkpoint that covers the new entries, then prove each receipt against it.
    audit.GetCheckpoint(au.GetCheckpointRequest(refresh=True), metadata=metadata, timeout=10)
    for receipt in answer.receipts:
        proof = audit.GetInclusionProof(
            au.GetInclusionProofRequest(index=receipt.log_index), metadata=metadata, timeout=10
        )
        if leaf_hash(proof.entry.data) != receipt.leaf_hash:
            sys.exit(f"receipt {receipt.key}: the leaf hash is not the entry's")
        if proof.entry.decoded.kind_name != "ApplicationSubmitted":
            sys.exit(f"entry {receipt.log_index} is not an application: {proof.entry.decoded}")
        origin, size, root = parse_checkpoint(verify_note(proof.checkpoint.note, key))
        computed = root_from_inclusion_proof(
            receipt.log_index, size, receipt.leaf_hash, list(proof.path)
        )
        if computed != root:
            sys.exit(f"receipt {receipt.key}: the inclusion proof does not lead to the signed root")
        print(
            f"receipt: {receipt.key} in window {receipt.window} is entry {receipt.log_index} "
            f"of the tree of size {size}, checkpoint signed by {key[0]}"
        )
    amend_withdraw_close(pb, channel, metadata, window)


def amend_withdraw_close(pb, channel, metadata, window):
    """Amends PY-A1 (another lottery number), adds PY-A2 and withdraws it, checks PY-A1's history,
    closes the window and recomputes its commitment from the log's entries."""
    import window_digest

    fr, au, co = pb["fairs"], pb["audit"], pb["common"]
    fairs = pb["fairs_grpc"].FairsStub(channel)
    audit = pb["audit_grpc"].AuditStub(channel)
    amended = fr.SubmitFairApplicationsRequest(
        window=window,
        amend=True,
        applicants=[
            fr.FairApplicant(id="PY-A1", category="food", tier=1, lottery=9, choices=["PY-F1"])
        ],
    )
    fairs.SubmitApplications(iter([amended]), metadata=metadata, timeout=10)
    second = fr.SubmitFairApplicationsRequest(
        window=window,
        applicants=[
            fr.FairApplicant(id="PY-A2", category="food", tier=0, lottery=2, choices=["PY-F1"])
        ],
    )
    fairs.SubmitApplications(iter([second]), metadata=metadata, timeout=10)
    withdrawn = fairs.WithdrawApplications(
        co.WithdrawApplicationsRequest(window=window, ids=["PY-A2"]), metadata=metadata, timeout=10
    )
    print(f"withdrawn: PY-A2 at entry {withdrawn.receipts[0].log_index}")
    closed = fairs.CloseApplications(
        fr.CloseFairApplicationsRequest(window=window), metadata=metadata, timeout=10
    ).commitment
    history = fairs.GetApplicationStatus(
        co.GetApplicationStatusRequest(window=window, id="PY-A1"), metadata=metadata, timeout=10
    )
    kinds = [co.ApplicationStep.Kind.Name(step.kind) for step in history.steps]
    if kinds != ["RECEIVED", "AMENDED", "IN_CLOSED_SET"]:
        sys.exit(f"PY-A1's history is {kinds}")
    print("history: PY-A1 " + ", ".join(f"{k} at {s.log_index}" for k, s in zip(kinds, history.steps)))
    entries = [
        (e.index, e.data)
        for part in audit.StreamEntries(
            au.StreamEntriesRequest(start=0, end=closed.log_index + 1),
            metadata=metadata,
            timeout=30,
        )
        for e in part.entries
    ]
    found = [w for w in window_digest.closed_windows(entries) if w[1] == window]
    if not found:
        sys.exit(f"the log has no commitment of window {window}")
    _, _, applications, logged, computed, count = found[0]
    if (computed, count) != (closed.set_digest, closed.applications) or logged != computed:
        sys.exit(f"window {window}: recomputed {computed.hex()} ({count}), logged {logged.hex()}")
    if count != 1:
        sys.exit(f"window {window} closed with {count} applications, 1 expected")
    print(f"commitment: window {window}, {count} application, digest {computed.hex()} recomputed")


if __name__ == "__main__":
    main()
