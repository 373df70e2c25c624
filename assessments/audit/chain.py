#!/usr/bin/env python3
"""Preflight audit-chain verifier: the canonical encoding and the checks, in one file.

This module imports nothing from the app or Django (only the standard library
and, for checkpoint signatures, ``cryptography``), so an auditor can copy this
one file and check an export on their own machine:

    python verify_audit_export.py events.jsonl --checkpoint checkpoint.json \
        [--files-dir media/] [--trusted-key-id HEX]

The app verifies its database with the same functions. The encoding is
specified in the README ("Audit trail"); keep the two in step.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
CHECKPOINT_FORMAT = "preflight-audit-checkpoint/1"
HASHED_FIELDS = (
    "organisation",
    "sequence",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "pilot_id",
    "changes",
    "request_id",
    "prev_hash",
)
CHECKPOINT_FIELDS = ("organisation", "sequence", "head_hash", "signed_at", "key_id", "public_key")


# --- canonical encoding -----------------------------------------------------


def format_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit datetimes must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_jsonable(value: Any) -> Any:
    """Normalise a Python value to the JSON subset the chain stores.

    Datetimes become UTC ISO 8601 with microseconds and ``Z``; dates ISO 8601;
    Decimals their plain string; floats are refused because their text form is
    not stable across languages. Anything else becomes its ``str``.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        raise TypeError("floats are not allowed in audit events; use Decimal or str")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return str(value)


def canonical_json(body: dict[str, Any]) -> bytes:
    """UTF-8 JSON: keys sorted by code point, no whitespace, non-ASCII as-is, no NaN."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def canonical_bytes(record: dict[str, Any]) -> bytes:
    return canonical_json({name: record[name] for name in HASHED_FIELDS})


def event_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def checkpoint_message(checkpoint: dict[str, Any]) -> bytes:
    return canonical_json({name: checkpoint[name] for name in CHECKPOINT_FIELDS})


# --- verification -----------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    sequence: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"sequence {self.sequence}" if self.sequence is not None else "checkpoint"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class VerifyResult:
    events_checked: int
    files_checked: int
    head_sequence: int
    head_hash: str
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


FileHasher = Callable[[str], str | None]


def checkpoint_problem(checkpoint: dict[str, Any], *, trusted_key_id: str | None = None) -> Problem | None:
    """Check a checkpoint's own signature (and, if given, that it was made by the trusted key)."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:  # pragma: no cover - the app always has cryptography
        return Problem(None, "bad checkpoint signature", "the cryptography package is needed to check signatures")
    if checkpoint.get("format") != CHECKPOINT_FORMAT or any(k not in checkpoint for k in CHECKPOINT_FIELDS):
        return Problem(None, "bad checkpoint signature", "not a Preflight checkpoint file")
    try:
        raw = base64.b64decode(checkpoint["public_key"], validate=True)
        if hashlib.sha256(raw).hexdigest() != checkpoint["key_id"]:
            return Problem(None, "bad checkpoint signature", "key_id does not match the public key")
        Ed25519PublicKey.from_public_bytes(raw).verify(
            base64.b64decode(checkpoint.get("signature", ""), validate=True), checkpoint_message(checkpoint)
        )
    except (InvalidSignature, ValueError):
        return Problem(checkpoint.get("sequence"), "bad checkpoint signature", "the signature does not verify")
    if trusted_key_id and checkpoint["key_id"] != trusted_key_id:
        return Problem(
            None, "bad checkpoint signature", f"signed by key {checkpoint['key_id'][:16]}…, not the trusted key"
        )
    return None


def verify_records(
    records: Iterable[dict[str, Any]],
    *,
    organisation: str | None = None,
    checkpoint: dict[str, Any] | None = None,
    trusted_key_id: str | None = None,
    file_hasher: FileHasher | None = None,
) -> VerifyResult:
    """Walk records in sequence order, stopping at the first problem. Constant memory."""
    count = files = 0
    prev_hash, expected = GENESIS_HASH, 1

    def result(problem: Problem | None) -> VerifyResult:
        return VerifyResult(count, files, expected - 1, prev_hash, problem)

    if checkpoint is not None:
        bad = checkpoint_problem(checkpoint, trusted_key_id=trusted_key_id)
        if bad:
            return result(bad)
        if organisation and checkpoint["organisation"] != organisation:
            return result(Problem(None, "bad checkpoint signature", "the checkpoint is for another organisation"))
    for record in records:
        sequence = record.get("sequence")
        if organisation and record.get("organisation") != organisation:
            return result(Problem(sequence, "wrong organisation", f"event belongs to {record.get('organisation')!r}"))
        if sequence != expected:
            if isinstance(sequence, int) and sequence > expected:
                detail = (
                    f"events {expected}..{sequence - 1} are missing"
                    if sequence - 1 > expected
                    else f"event {expected} is missing"
                )
                return result(Problem(expected, "gap in sequence", detail))
            return result(
                Problem(expected, "gap in sequence", f"expected event {expected}, found {sequence!r} out of order")
            )
        if record.get("prev_hash") != prev_hash:
            return result(Problem(sequence, "broken link", "prev_hash does not match the previous event's hash"))
        try:
            computed = event_hash(record)
        except (KeyError, TypeError, ValueError) as exc:
            return result(Problem(sequence, "hash mismatch", f"cannot encode the event: {exc}"))
        if computed != record.get("hash"):
            return result(Problem(sequence, "hash mismatch", "the event's content does not match its hash"))
        if file_hasher and record.get("action") == "evidence.added":
            changes = record.get("changes") or {}
            name = (changes.get("file") or [None, None])[1]
            digest = (changes.get("sha256") or [None, None])[1]
            if name and digest:
                files += 1
                actual = file_hasher(name)
                if actual is None:
                    return result(Problem(sequence, "missing file", f"{name} is not in storage"))
                if actual != digest:
                    return result(Problem(sequence, "file hash mismatch", f"{name} no longer has the hash recorded"))
        if checkpoint is not None and sequence == checkpoint["sequence"] and computed != checkpoint["head_hash"]:
            return result(Problem(sequence, "hash mismatch", "the chain was rewritten after the signed checkpoint"))
        count += 1
        prev_hash, expected = computed, expected + 1
    if checkpoint is not None and expected - 1 < checkpoint["sequence"]:
        return result(
            Problem(
                expected,
                "head behind checkpoint",
                f"chain ends at {expected - 1}, checkpoint signed {checkpoint['sequence']}",
            )
        )
    return result(None)


def sha256_file(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Preflight audit export (events.jsonl).")
    parser.add_argument("events", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="a signed checkpoint JSON file kept outside the app")
    parser.add_argument("--files-dir", type=Path, help="the evidence storage folder, to re-hash stored files")
    parser.add_argument("--trusted-key-id", help="refuse checkpoints signed by any other key (hex SHA-256)")
    parser.add_argument("--organisation", help="organisation slug the export must belong to")
    args = parser.parse_args(argv)
    checkpoint = json.loads(args.checkpoint.read_text(encoding="utf-8")) if args.checkpoint else None
    hasher = (lambda name: sha256_file(args.files_dir / name)) if args.files_dir else None
    result = verify_records(
        read_jsonl(args.events),
        organisation=args.organisation,
        checkpoint=checkpoint,
        trusted_key_id=args.trusted_key_id,
        file_hasher=hasher,
    )
    if result.ok:
        print(
            f"OK: {result.events_checked} events, {result.files_checked} files, "
            f"head {result.head_sequence} {result.head_hash}"
        )
        return 0
    print(f"BROKEN at {result.problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
