#!/usr/bin/env python3
"""Preflight audit-chain verifier: the canonical encoding and the checks, in one file.

This module imports nothing from the app or Django (only the standard library
and, for checkpoint signatures, ``cryptography``), so an auditor can copy this
one file and check an export on their own machine:

    python verify_audit_export.py events.jsonl --organisation SLUG \
        --anchor-dir checkpoints/ --trusted-key HEX [--files-dir media/]

Checkpoints are accepted only when signed by a key given with ``--trusted-key``
(repeatable; ``--trusted-key-id`` is the older spelling).

The app verifies its database with the same functions. The encoding is
specified in the README ("Audit trail"); keep the two in step.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
CHECKPOINT_FORMAT_V1 = "preflight-audit-checkpoint/1"
CHECKPOINT_FORMAT = "preflight-audit-checkpoint/2"
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
CHECKPOINT_FIELDS_V1 = ("organisation", "sequence", "head_hash", "signed_at", "key_id", "public_key")
# Version 2 also signs the hash of every event since the previous checkpoint, so a
# chain recomputed after an edit is located at the edited event, not at the checkpoint.
CHECKPOINT_FIELDS = (*CHECKPOINT_FIELDS_V1, "first_sequence", "event_hashes")
SIGNED_FIELDS = {CHECKPOINT_FORMAT_V1: CHECKPOINT_FIELDS_V1, CHECKPOINT_FORMAT: CHECKPOINT_FIELDS}
KEY_ID = re.compile(r"[0-9a-f]{64}")


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
    """The canonical bytes a checkpoint's signature (and its RFC 3161 timestamp) covers."""
    fields = SIGNED_FIELDS.get(checkpoint.get("format", ""))
    if fields is None:
        raise ValueError(f"unknown checkpoint format {checkpoint.get('format')!r}")
    return canonical_json({name: checkpoint[name] for name in fields})


def key_ids_parse(values: Iterable[str]) -> frozenset[str]:
    """Trusted key ids from settings or arguments: hex SHA-256, comma-separated or repeated."""
    ids: set[str] = set()
    for value in values:
        for part in value.split(","):
            part = part.strip().lower()
            if not part:
                continue
            if not KEY_ID.fullmatch(part):
                raise ValueError(f"{part!r} is not a key id (64 hex characters, printed by `manage.py audit_keygen`)")
            ids.add(part)
    return frozenset(ids)


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
    checkpoints_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


FileHasher = Callable[[str], str | None]
NO_TRUSTED_KEY = (
    "no trusted checkpoint key is configured, so no checkpoint can be accepted: set AUDIT_TRUSTED_KEY_IDS "
    "(or pass --trusted-key to the standalone verifier) to the key id `manage.py audit_keygen` prints"
)


def checkpoint_label(checkpoint: dict[str, Any]) -> str:
    return f"checkpoint #{checkpoint.get('sequence')} signed {checkpoint.get('signed_at')}"


def _shape_problem(checkpoint: dict[str, Any]) -> str | None:
    """Why a checkpoint's fields do not hang together, or None."""
    fields = SIGNED_FIELDS.get(checkpoint.get("format", ""))
    if fields is None or any(k not in checkpoint for k in fields):
        return "not a Preflight checkpoint file"
    sequence, head = checkpoint["sequence"], checkpoint["head_hash"]
    if not isinstance(sequence, int) or sequence < 0 or not isinstance(head, str):
        return "its sequence or head hash is malformed"
    if checkpoint["format"] == CHECKPOINT_FORMAT_V1:
        return None
    first, hashes = checkpoint["first_sequence"], checkpoint["event_hashes"]
    if not isinstance(first, int) or not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        return "its list of event hashes is malformed"
    if hashes and (first + len(hashes) - 1 != sequence or hashes[-1] != head or first < 1):
        return "its list of event hashes does not end at its head"
    if not hashes and first != sequence + 1:
        return "its empty list of event hashes does not start after its head"
    return None


def checkpoint_problem(checkpoint: dict[str, Any], *, trusted_key_ids: Collection[str]) -> Problem | None:
    """Check a checkpoint's shape, its signature, and that a trusted key made it.

    With no trusted key at all the answer is a failure, never a pass: a checkpoint
    anyone could have signed proves nothing.
    """
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:  # pragma: no cover - the app always has cryptography
        return Problem(None, "bad checkpoint signature", "the cryptography package is needed to check signatures")
    shape = _shape_problem(checkpoint)
    if shape:
        return Problem(None, "bad checkpoint signature", f"{checkpoint_label(checkpoint)}: {shape}")
    if not trusted_key_ids:
        return Problem(None, "untrusted checkpoint key", NO_TRUSTED_KEY)
    try:
        raw = base64.b64decode(checkpoint["public_key"], validate=True)
        if hashlib.sha256(raw).hexdigest() != checkpoint["key_id"]:
            return Problem(
                None,
                "bad checkpoint signature",
                f"{checkpoint_label(checkpoint)}: key_id does not match the public key",
            )
        Ed25519PublicKey.from_public_bytes(raw).verify(
            base64.b64decode(checkpoint.get("signature", ""), validate=True), checkpoint_message(checkpoint)
        )
    except (InvalidSignature, ValueError, TypeError):
        return Problem(
            checkpoint.get("sequence"),
            "bad checkpoint signature",
            f"{checkpoint_label(checkpoint)}: the signature does not verify",
        )
    if checkpoint["key_id"] not in trusted_key_ids:
        return Problem(
            None,
            "untrusted checkpoint key",
            f"{checkpoint_label(checkpoint)} is signed by key {checkpoint['key_id'][:16]}…, which is not trusted",
        )
    return None


def _vouched(checkpoint: dict[str, Any]) -> list[tuple[int, str]]:
    """(sequence, hash) pairs a checkpoint signs: every listed event, or only its head."""
    if checkpoint["format"] == CHECKPOINT_FORMAT and checkpoint["event_hashes"]:
        first = checkpoint["first_sequence"]
        return [(first + offset, digest) for offset, digest in enumerate(checkpoint["event_hashes"])]
    return [(checkpoint["sequence"], checkpoint["head_hash"])] if checkpoint["sequence"] > 0 else []


class _Checkpoints:
    """Signed checkpoints, read just ahead of the walk so memory stays bounded.

    ``claims`` maps an event sequence to the hashes checkpoints signed for it; the
    walk pops each sequence as it passes, so a checkpoint's list is held only
    until the chain reaches its end.
    """

    def __init__(
        self, checkpoints: Iterable[dict[str, Any]], *, trusted_key_ids: Collection[str], organisation: str | None
    ) -> None:
        self._source = iter(checkpoints)
        self._trusted = trusted_key_ids
        self._organisation = organisation
        self._ahead: dict[str, Any] | None = None
        self.claims: dict[int, list[tuple[str, int]]] = {}
        self.checked = 0
        self.highest: int | None = None
        self.next_claim = 0
        self.problem = self._take()

    def _take(self) -> Problem | None:
        self._ahead = next(self._source, None)
        self.next_claim = 1 << 62
        if self._ahead is None:
            return None
        bad = checkpoint_problem(self._ahead, trusted_key_ids=self._trusted)
        if bad is None and self._organisation and self._ahead["organisation"] != self._organisation:
            bad = Problem(
                None, "bad checkpoint signature", f"{checkpoint_label(self._ahead)} is for another organisation"
            )
        if bad:
            self._ahead = None
            return bad
        pairs = _vouched(self._ahead)
        self.next_claim = pairs[0][0] if pairs else 0
        return None

    def load(self, through: int) -> Problem | None:
        """Read every checkpoint whose first signed event is at or before ``through``."""
        while self._ahead is not None and self.next_claim <= through:
            checkpoint = self._ahead
            for sequence, digest in _vouched(checkpoint):
                self.claims.setdefault(sequence, []).append((digest, checkpoint["sequence"]))
            self.checked += 1
            if self.highest is None or checkpoint["sequence"] > self.highest:
                self.highest = checkpoint["sequence"]
            self.problem = self._take()
            if self.problem:
                return self.problem
        return None


def verify_records(
    records: Iterable[dict[str, Any]],
    *,
    organisation: str | None = None,
    checkpoints: Iterable[dict[str, Any]] = (),
    trusted_key_ids: Collection[str] = frozenset(),
    file_hasher: FileHasher | None = None,
    start_sequence: int = 1,
    start_hash: str = GENESIS_HASH,
) -> VerifyResult:
    """Walk records in sequence order, stopping at the first problem. Constant memory.

    ``checkpoints`` must come in ascending sequence order; every one is checked,
    not only the newest: its signature and key, and each event hash it signed.
    ``start_sequence``/``start_hash`` verify only a chain's tail after a point
    already vouched for (the checkpoint job does, before it signs).
    """
    count = files = 0
    prev_hash, expected = start_hash, start_sequence
    signed = _Checkpoints(checkpoints, trusted_key_ids=trusted_key_ids, organisation=organisation)

    def result(problem: Problem | None) -> VerifyResult:
        return VerifyResult(count, files, expected - 1, prev_hash, problem, signed.checked)

    if signed.problem:
        return result(signed.problem)
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
        if sequence >= signed.next_claim and (bad := signed.load(sequence)):
            return result(bad)
        if signed.claims:
            for digest, at in signed.claims.pop(sequence, ()):
                if digest != computed:
                    return result(
                        Problem(
                            sequence,
                            "hash mismatch",
                            f"the chain was rewritten after the signed checkpoint #{at}: "
                            "this event's hash is not the one it signed",
                        )
                    )
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
        count += 1
        prev_hash, expected = computed, expected + 1
    if bad := signed.load(1 << 62):
        return result(bad)
    if signed.highest is not None and expected - 1 < signed.highest:
        return result(
            Problem(
                expected,
                "head behind checkpoint",
                f"chain ends at {expected - 1}, a signed checkpoint covers {signed.highest}",
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


def checkpoints_read(paths: Iterable[Path], *, organisation: str | None) -> list[dict[str, Any]]:
    """Checkpoint files (``.json``) for ``organisation``, in sequence order."""
    found = []
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and (organisation is None or data.get("organisation") == organisation):
            found.append(data)
    return sorted(found, key=lambda c: (c.get("sequence", 0), str(c.get("signed_at", ""))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Preflight audit export (events.jsonl).")
    parser.add_argument("events", type=Path)
    parser.add_argument(
        "--checkpoint", type=Path, action="append", default=[], help="a signed checkpoint JSON file (repeatable)"
    )
    parser.add_argument("--anchor-dir", type=Path, help="a folder of anchored checkpoint files; checks every one")
    parser.add_argument("--files-dir", type=Path, help="the evidence storage folder, to re-hash stored files")
    parser.add_argument(
        "--trusted-key",
        "--trusted-key-id",
        dest="trusted_keys",
        action="append",
        default=[],
        metavar="KEY_ID",
        help="accept checkpoints signed by this key (hex SHA-256 of the public key; repeatable)",
    )
    parser.add_argument("--organisation", help="organisation slug the export must belong to")
    args = parser.parse_args(argv)
    if args.anchor_dir and not args.organisation:
        parser.error("--anchor-dir needs --organisation")
    try:
        trusted = key_ids_parse(args.trusted_keys)
    except ValueError as exc:
        parser.error(str(exc))
    paths = list(args.checkpoint)
    if args.anchor_dir:
        paths += sorted(args.anchor_dir.glob("*.json"))
    checkpoints = checkpoints_read(paths, organisation=args.organisation)
    hasher = (lambda name: sha256_file(args.files_dir / name)) if args.files_dir else None
    result = verify_records(
        read_jsonl(args.events),
        organisation=args.organisation,
        checkpoints=checkpoints,
        trusted_key_ids=trusted,
        file_hasher=hasher,
    )
    if result.ok:
        print(
            f"OK: {result.events_checked} events, {result.files_checked} files, "
            f"{result.checkpoints_checked} checkpoints, head {result.head_sequence} {result.head_hash}"
        )
        return 0
    print(f"BROKEN at {result.problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
