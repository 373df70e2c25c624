#!/usr/bin/env python3
"""Preflight audit-chain verifier: the canonical encoding and the checks, in one file.

This module imports nothing from the app or Django (only the standard library
and, for checkpoint signatures, ``cryptography``), so an auditor can copy this
one file and check an export on their own machine:

    python verify_audit_export.py events.jsonl --organisation SLUG \
        --anchor-dir checkpoints/ --trusted-key HEX [--files-dir media/]
    python verify_audit_export.py --dossier dossier.zip [--trusted-key HEX]

Checkpoints are accepted only when signed by a key given with ``--trusted-key``
(repeatable; ``--trusted-key-id`` is the older spelling). A dossier without
``--trusted-key`` is checked against the key it ships, and the output says so.

An export in format 2 (a header line, then each event's canonical bytes) is
hashed as stored; an older export (format 1, one JSON object per event with its
``hash``) is parsed and re-encoded, as before. The file is over 800 lines on
purpose: it is the one file an auditor needs.

The app verifies its database with the same functions. The encoding is
specified in the README ("Audit trail"); keep the two in step.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import re
import sys
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

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
# Export format 2: a header line, then each event's canonical bytes exactly as hashed.
EXPORT_FORMAT = "preflight-audit-export/2"
DOSSIER_FORMAT = "preflight-dossier/1"
# Signed before the manifest's bytes, so a manifest signature can never pass for a checkpoint's.
DOSSIER_SIGNED_PREFIX = b"preflight-dossier-manifest/1\n"
EXPORT_CHUNK = 1 << 20  # bytes read at a time: bounds memory, keeps a chunk's lines in cache


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


@dataclasses.dataclass(frozen=True)
class Problem:
    sequence: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"sequence {self.sequence}" if self.sequence is not None else "checkpoint"
        return f"{where}: {self.kind}: {self.detail}"


@dataclasses.dataclass(frozen=True)
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


@dataclasses.dataclass(frozen=True)
class _Verified:
    """A run of export lines already checked in bulk: hashed as stored, linked, in sequence."""

    first: int
    prev: str
    count: int
    hashes: list[str]  # each line's SHA-256, hex
    evidence: dict[int, dict[str, Any]]  # offset -> parsed evidence.added event


@dataclasses.dataclass(frozen=True)
class _Unreadable:
    """An export line that is not a JSON object."""

    detail: str


def _claim_problem(signed: _Checkpoints, sequence: int, computed: str) -> Problem | None:
    for digest, at in signed.claims.pop(sequence, ()):
        if digest != computed:
            return Problem(
                sequence,
                "hash mismatch",
                f"the chain was rewritten after the signed checkpoint #{at}: "
                "this event's hash is not the one it signed",
            )
    return None


def _evidence_file(record: dict[str, Any]) -> tuple[str | None, str | None]:
    changes = record.get("changes") or {}
    if not isinstance(changes, dict):
        return None, None
    name = (changes.get("file") or [None, None])[1]
    digest = (changes.get("sha256") or [None, None])[1]
    return (name, digest) if isinstance(name, str) and isinstance(digest, str) and name and digest else (None, None)


def _file_problem(
    record: dict[str, Any],
    sequence: int,
    file_hasher: FileHasher | None,
    files_seen: dict[str, tuple[int, str]] | None,
) -> Problem | None:
    name, digest = _evidence_file(record)
    if name is None or digest is None:
        return None
    if files_seen is not None:
        files_seen[name] = (sequence, digest)
    if file_hasher is None:
        return None
    actual = file_hasher(name)
    if actual is None:
        return Problem(sequence, "missing file", f"{name} is not in storage")
    if actual != digest:
        return Problem(sequence, "file hash mismatch", f"{name} no longer has the hash recorded")
    return None


def verify_records(
    records: Iterable[dict[str, Any] | _Verified | _Unreadable],
    *,
    organisation: str | None = None,
    checkpoints: Iterable[dict[str, Any]] = (),
    trusted_key_ids: Collection[str] = frozenset(),
    file_hasher: FileHasher | None = None,
    start_sequence: int = 1,
    start_hash: str = GENESIS_HASH,
    files_seen: dict[str, tuple[int, str]] | None = None,
) -> VerifyResult:
    """Walk records in sequence order, stopping at the first problem. Constant memory.

    ``checkpoints`` must come in ascending sequence order; every one is checked,
    not only the newest: its signature and key, and each event hash it signed.
    ``start_sequence``/``start_hash`` verify only a chain's tail after a point
    already vouched for (the checkpoint job does, before it signs).
    ``records`` may also hold ``_Verified`` runs of export lines whose hashes,
    links and sequences were already checked in bulk (see ``export_records``).
    ``files_seen``, when given, collects each evidence file an event recorded:
    name -> (sequence, SHA-256).
    """
    count = files = 0
    prev_hash, expected = start_hash, start_sequence
    signed = _Checkpoints(checkpoints, trusted_key_ids=trusted_key_ids, organisation=organisation)

    def result(problem: Problem | None) -> VerifyResult:
        return VerifyResult(count, files, expected - 1, prev_hash, problem, signed.checked)

    if signed.problem:
        return result(signed.problem)
    for record in records:
        if isinstance(record, _Unreadable):
            return result(Problem(expected, "hash mismatch", record.detail))
        if isinstance(record, _Verified):
            if record.first != expected or record.prev != prev_hash:
                return result(Problem(expected, "gap in sequence", "the export's lines are out of step"))
            if not record.evidence and not signed.claims and signed.next_claim >= expected + record.count:
                count += record.count
                prev_hash, expected = record.hashes[-1], expected + record.count
                continue
            for offset, computed in enumerate(record.hashes):
                position = expected
                if position >= signed.next_claim and (bad := signed.load(position)):
                    return result(bad)
                if signed.claims and (bad := _claim_problem(signed, position, computed)):
                    return result(bad)
                if offset in record.evidence:
                    if bad := _file_problem(record.evidence[offset], position, file_hasher, files_seen):
                        return result(bad)
                    files += file_hasher is not None and _evidence_file(record.evidence[offset])[0] is not None
                count += 1
                prev_hash, expected = computed, expected + 1
            continue
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
        if signed.claims and (bad := _claim_problem(signed, sequence, computed)):
            return result(bad)
        if record.get("action") == "evidence.added":
            if bad := _file_problem(record, sequence, file_hasher, files_seen):
                return result(bad)
            files += file_hasher is not None and _evidence_file(record)[0] is not None
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


def export_line(record: dict[str, Any]) -> bytes:
    """One event line of export format 2: exactly the canonical bytes its hash is computed over."""
    return canonical_bytes(record)


def export_header(*, organisation: str, head_sequence: int, head_hash: str) -> bytes:
    """The first line of export format 2: the format, the organisation and the head the file ends at."""
    return canonical_json(
        {"format": EXPORT_FORMAT, "organisation": organisation, "head_sequence": head_sequence, "head_hash": head_hash}
    )


def _line_records(lines: Iterable[bytes], first: int) -> Iterator[dict[str, Any] | _Unreadable]:
    """Lines one by one, each a record whose ``hash`` is the SHA-256 of the line as stored.

    ``verify_records`` then re-encodes the fields, so a line that is not in canonical
    form (even one that parses to the original values) no longer matches its hash.
    """
    for number, line in enumerate(lines, start=first):
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            yield _Unreadable(f"the line for event {number} is not valid JSON: {exc}")
            return
        if not isinstance(record, dict):
            yield _Unreadable(f"the line for event {number} is not a JSON object")
            return
        record["hash"] = hashlib.sha256(line).hexdigest()
        yield record


def _evidence_lines(block: bytes, lines: list[bytes]) -> dict[int, dict[str, Any]] | None:
    """The ``evidence.added`` events among a chunk's lines, by offset; None if one does not parse.

    ``block`` is what was read: ``lines[0]`` may have begun in the block before, and
    the block may end in a line that is left for the next chunk.
    """
    marker = b'{"action":"evidence.added",'
    found: dict[int, dict[str, Any]] = {}
    offsets = [0] if lines[0].startswith(marker) else []
    offset, seen_to, at = 0, 0, block.find(b"\n" + marker)
    while at != -1:
        offset += block.count(b"\n", seen_to, at + 1)
        seen_to = at + 1
        if offset < len(lines):
            offsets.append(offset)
        at = block.find(b"\n" + marker, seen_to)
    for offset in offsets:
        try:
            record = json.loads(lines[offset])
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return None
        if not isinstance(record, dict):
            return None
        found[offset] = record
    return found


# The last three of the sorted hashed fields end every canonical line, in this order:
# ,"prev_hash":"<64 hex>","request_id":"<string>","sequence":<integer>}
_PREV = b',"prev_hash":"'
_REQUEST = b'","request_id":"'
_SEQUENCE = b'","sequence":'
_LINK = len(_PREV) + 64 + len(_REQUEST)  # ,"prev_hash":"<hash>","request_id":" in bytes
_REQUEST_MAX = 64  # request ids longer than this (in bytes) are checked line by line; the app's are at most 64
_IS_QUOTE = bytes(int(byte == ord('"')) for byte in range(256))  # translation tables: 1 for the byte, else 0
_IS_COLON = bytes(int(byte == ord(":")) for byte in range(256))
# Digit k (from the right) of consecutive numbers runs through 0-9, each held 10**k times: for k < 3
# a slice of one of these patterns, repeated.
_DIGIT_RUNS = [b"".join(bytes((digit,)) * 10**k for digit in b"0123456789") for k in range(3)]


def _digit_column(first: int, count: int, k: int) -> bytes:
    """Digit ``k`` from the right of ``first`` .. ``first + count - 1`` (all at least ``k + 1`` digits long)."""
    if k < 3:
        pattern, start = _DIGIT_RUNS[k], first % 10 ** (k + 1)
        return (pattern * ((start + count) // len(pattern) + 1))[start : start + count]
    runs, number, unit = [], first, 10**k
    while number < first + count:  # few runs: each is 1000 or more numbers long
        end = min(first + count, (number // unit + 1) * unit)
        runs.append(b"0123456789"[number // unit % 10 :][:1] * (end - number))
        number = end
    return b"".join(runs)


def _numbered(ends: bytes, size: int, at: int, first: int, count: int, width: int) -> bool:
    """Whether each ``size``-byte record of ``ends`` holds ``","sequence":<first + i>}`` from ``at`` to its end.

    Checked a column at a time: one slice with a step reads that byte of every record.
    """
    if len(ends) != size * count or at + len(_SEQUENCE) + width + 1 != size:
        return False
    for column, byte in enumerate(_SEQUENCE, at):
        if ends[column::size] != bytes((byte,)) * count:
            return False
    if ends[size - 1 :: size] != b"}" * count:
        return False
    last = size - 2  # the column of the units digit
    return all(ends[last - k :: size] == _digit_column(first, count, k) for k in range(width))


def _tails_run(lines: list[bytes], hashes: list[str], prev: str, first: int, width: int) -> bool:
    """``_tails_linked`` for lines whose sequence numbers have ``width`` digits.

    One slice per line cuts its last bytes (``ends``): the sequence member, a request id
    of up to ``_REQUEST_MAX`` bytes and the ``:"`` before it. Columns of ``ends`` check
    every sequence number and find, for each request id length, which lines have
    their ``:"`` there; the lines of one length have their link at one distance from
    their end, so one slice per line cuts it out and all are compared with the
    expected links at once. Last, ``ends`` holds exactly the quotes of those members:
    none is left for a request id.
    """
    count, size = len(lines), len(_SEQUENCE) + width + 1  # ","sequence":<n>}
    span = size + _REQUEST_MAX + 2
    ends = b"".join(map(itemgetter(slice(-span, None)), lines))
    if len(ends) != span * count or b"\\" in ends[span - size - 1 :: span]:  # the request id's closing quote
        return False
    if not _numbered(ends, span, span - size, first, count, width):
        return False
    # pending: one byte per line, 1 until its request id's length is known (an int: & and ^ take all at once)
    links, pending, at, quotes = [prev, *hashes[:-1]], int.from_bytes(b"\1" * count, "big"), 0, 3 * count
    while pending:
        line = lines[at]
        length = len(line) - size - 1 - line.rfind(b'"', 0, len(line) - size)  # the request id's, in bytes
        if length > _REQUEST_MAX:
            return False
        opened = span - size - 1 - length  # the column of the request id's opening quote
        opens = ends[opened::span].translate(_IS_QUOTE)
        colons = ends[opened - 1 :: span].translate(_IS_COLON)
        own: Iterable[bytes] = lines
        wanted: Iterable[str] = links
        if at == 0 and 0 not in opens and 0 not in colons:  # every line's request id is this long
            members, pending = count, 0
        else:
            mine = int.from_bytes(opens, "big") & int.from_bytes(colons, "big") & pending
            if not mine >> 8 * (count - 1 - at) & 1:
                return False
            pending ^= mine
            flags = mine.to_bytes(count, "big")
            own, wanted, members = itertools.compress(lines, flags), itertools.compress(links, flags), flags.count(1)
        rest = length + size
        cut = b"".join(map(itemgetter(slice(-rest - _LINK, -rest)), own))
        if cut != _PREV + (_REQUEST + _PREV).decode().join(wanted).encode() + _REQUEST:
            return False
        # The quotes in these lines' ends: the members' before the request id, and the sequence member's three.
        quotes += members * (_PREV + bytes(64) + _REQUEST)[-(span - size - length) :].count(b'"')
        at = pending.to_bytes(count, "big").find(1)
    return ends.count(b'"') == quotes


def _tails_linked(lines: list[bytes], hashes: list[str], prev: str, first: int) -> bool:
    """Whether every line ends ``,"prev_hash":"<hash of the line before>","request_id":"<id>","sequence":<its
    number>}`` with no quote in the id and no backslash before its closing quote.

    Read from the line's end, these are the top-level members of a line that is a JSON
    object, whatever the line holds before them (a nested ``"prev_hash"`` in ``changes``
    cannot pass for the real one). Lines are taken in runs whose sequence numbers have
    as many digits.
    """
    count, start = len(lines), 0
    while start < count:
        width = len(str(first + start))
        end = min(count, 10**width - first)
        part, own = (lines, hashes) if (start, end) == (0, count) else (lines[start:end], hashes[start:end])
        if not _tails_run(part, own, prev if start == 0 else hashes[start - 1], first + start, width):
            return False
        start = end
    return True


def _first_line_canonical(line: bytes, *, organisation: str | None, prev: str, first: int) -> bool:
    """The careful check, on a chunk's first line: a JSON object in canonical form, in place, of the organisation."""
    try:
        record = json.loads(line)
        return (
            isinstance(record, dict)
            and canonical_bytes(record) == line
            and (not organisation or record["organisation"] == organisation)
            and record["sequence"] == first
            and record["prev_hash"] == prev
        )
    except (ValueError, TypeError, KeyError, RecursionError):
        return False


def _export_chunks(handle: BinaryIO) -> Iterator[tuple[list[bytes], bytes]]:
    """The complete lines of an export's body, a chunk at a time, each with the block read.

    A line cut by a block's end is carried into the next chunk; no block is copied.
    """
    rest = b""
    while block := handle.read(EXPORT_CHUNK):
        lines = block.split(b"\n")
        if rest:
            lines[0] = rest + lines[0]
        rest = lines.pop()
        if lines:
            yield lines, block
    if rest:
        yield [rest], b""


def export_records(
    handle: BinaryIO, *, organisation: str | None, evidence_files: bool = True
) -> Iterator[dict[str, Any] | _Verified | _Unreadable]:
    """The event lines of a format-2 export (after its header) for ``verify_records``.

    Lines are read a chunk at a time and checked in bulk: every line hashed as
    stored; read from its end, without parsing it, its ``prev_hash`` equal to the
    hash of the line before and its ``sequence`` the next number
    (``_tails_linked``); and the chunk's first line checked with care (parsed, in
    canonical form, of the organisation). ``evidence_files=False`` skips looking
    for ``evidence.added`` events (when no stored file is to be checked). A chunk
    that passes becomes one ``_Verified``; any other chunk is handed over line by
    line, so ``verify_records`` finds and names the problem exactly as it does for
    the database.

    What the bulk check leaves out: the other lines are not parsed, so one that is
    not in canonical form, or names another organisation, passes if its link and
    sequence are right. Its hash is then not one the app computed, so the lines
    after it link to it only in a chain recomputed from it on: what signed
    checkpoints are there to catch (each event hash they signed is compared here
    too), and what nothing can tell from a real chain past the last checkpoint.
    """
    sha256, hexdigest = hashlib.sha256, type(hashlib.sha256()).hexdigest
    prev, expected = GENESIS_HASH, 1
    for lines, block in _export_chunks(handle):
        count = len(lines)
        hashes = list(map(hexdigest, map(sha256, lines)))
        if _first_line_canonical(lines[0], organisation=organisation, prev=prev, first=expected) and _tails_linked(
            lines, hashes, prev, expected
        ):
            marked = _evidence_lines(block, lines) if evidence_files else {}
            if marked is not None:
                yield _Verified(expected, prev, count, hashes, marked)
                prev, expected = hashes[-1], expected + count
                continue
        kept = [line for line in lines if line.strip()]
        yield from _line_records(kept, expected)
        if kept:
            prev, expected = sha256(kept[-1]).hexdigest(), expected + len(kept)


def read_export(
    source: Path | BinaryIO, *, organisation: str | None, evidence_files: bool = True
) -> tuple[dict[str, Any] | None, Iterator[Any]]:
    """An export's header (None for format 1) and its records, streamed, for ``verify_records``.

    Format 1 (every line a JSON object of the hashed fields and ``hash``) is still read:
    its lines are parsed and re-encoded, as before.
    """
    handle: BinaryIO = source.open("rb") if isinstance(source, Path) else source
    first = handle.readline()
    if first.startswith(b'{"format":'):
        try:
            header = json.loads(first)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            header = None
        if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
            handle.close()
            raise ValueError(f"the export's first line is not a known header: {first[:80]!r}")

        def events() -> Iterator[Any]:
            with handle:
                yield from export_records(handle, organisation=organisation, evidence_files=evidence_files)

        return header, events()

    def legacy() -> Iterator[Any]:
        with handle:
            for line in itertools.chain([first], handle):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                    yield _Unreadable(f"a line is not valid JSON: {exc}")
                    return

    return None, legacy()


def header_problem(header: dict[str, Any] | None, result: VerifyResult, *, organisation: str | None) -> Problem | None:
    """Whether a format-2 export ends where its header says (catches a changed or cut last event)."""
    if header is None or not result.ok:
        return None
    if organisation and header.get("organisation") != organisation:
        return Problem(None, "wrong organisation", f"the export is of {header.get('organisation')!r}")
    if (header.get("head_sequence"), header.get("head_hash")) != (result.head_sequence, result.head_hash):
        return Problem(
            result.head_sequence,
            "hash mismatch",
            f"the export's header says it ends at event {header.get('head_sequence')} with hash "
            f"{str(header.get('head_hash'))[:16]}…, its events end at {result.head_sequence} with "
            f"{result.head_hash[:16]}…: the last event was changed, or events were cut off or added",
        )
    return None


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


# --- the auditor's dossier -------------------------------------------------------


class _Members:
    """The files of a dossier, from its zip or from the folder it was unpacked into."""

    def __init__(self, path: Path) -> None:
        self._folder = path if path.is_dir() else None
        self._zip = None if self._folder else zipfile.ZipFile(path)

    def names(self) -> list[str]:
        if self._folder is not None:
            return sorted(p.relative_to(self._folder).as_posix() for p in self._folder.rglob("*") if p.is_file())
        assert self._zip is not None
        return sorted(info.filename for info in self._zip.infolist() if not info.is_dir())

    def open(self, name: str) -> BinaryIO | None:
        try:
            if self._folder is not None:
                return (self._folder / name).open("rb")
            assert self._zip is not None
            return self._zip.open(name)  # type: ignore[return-value]
        except (KeyError, OSError):
            return None

    def read(self, name: str) -> bytes | None:
        handle = self.open(name)
        if handle is None:
            return None
        with handle:
            return handle.read()

    def sha256(self, name: str) -> str | None:
        handle = self.open(name)
        if handle is None:
            return None
        digest = hashlib.sha256()
        with handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def _short(digest: object) -> str:
    return f"{str(digest)[:16]}…"


def _dossier_keys(members: _Members, problems: list[str]) -> tuple[Any, str | None, dict[str, Any] | None]:
    """The public key (and its id) and the checkpoint, noting what is wrong with them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    public, pem_id, checkpoint = None, None, None
    pem = members.read("public_key.pem")
    try:
        loaded = serialization.load_pem_public_key(pem or b"")
    except ValueError:
        loaded = None
    if isinstance(loaded, Ed25519PublicKey):
        public = loaded
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        pem_id = hashlib.sha256(raw).hexdigest()
    else:
        problems.append("public_key.pem: missing or not an Ed25519 public key")
    try:
        data = json.loads(members.read("checkpoint.json") or b"")
        checkpoint = data if isinstance(data, dict) else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        checkpoint = None
    if checkpoint is None:
        problems.append("checkpoint.json: missing or not a JSON object")
    elif pem_id is not None and checkpoint.get("key_id") != pem_id:
        problems.append(
            f"public_key.pem: swapped: its key id is {_short(pem_id)}, but checkpoint.json was signed by "
            f"{_short(checkpoint.get('key_id'))}"
        )
    return public, pem_id, checkpoint


def verify_dossier(path: Path, *, trusted_key_ids: Collection[str] = frozenset()) -> tuple[list[str], str]:
    """Check a dossier (zip or unpacked folder): (what is wrong, one per line; a summary).

    Without ``trusted_key_ids`` the key shipped in the dossier is trusted, which shows
    the dossier is intact and self-consistent, not who made it: the summary says so.
    """
    from cryptography.exceptions import InvalidSignature

    problems: list[str] = []
    try:
        members = _Members(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"{path}: cannot be read as a dossier: {exc}"], ""
    public, pem_id, checkpoint = _dossier_keys(members, problems)
    trusted = frozenset(trusted_key_ids) or frozenset([pem_id] if pem_id else [])
    if checkpoint is not None and (bad := checkpoint_problem(checkpoint, trusted_key_ids=trusted)):
        problems.append(f"checkpoint.json: {bad.kind}: {bad.detail}")
        checkpoint_ok = False
    else:
        checkpoint_ok = checkpoint is not None

    manifest_bytes = members.read("manifest.json")
    try:
        manifest = json.loads(manifest_bytes or b"")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != DOSSIER_FORMAT:
        problems.append("manifest.json: missing or not a Preflight dossier manifest")
        return problems, ""
    assert manifest_bytes is not None
    try:
        signature = base64.b64decode(members.read("manifest.sig") or b"", validate=False)
        if public is None:
            raise InvalidSignature
        public.verify(signature, DOSSIER_SIGNED_PREFIX + manifest_bytes)
    except (InvalidSignature, ValueError):
        problems.append("manifest.json: altered: its signature (manifest.sig) does not verify with public_key.pem")
    else:
        if pem_id not in trusted:
            problems.append(f"manifest.sig: signed by key {_short(pem_id)}, which is not trusted")

    organisation = str(manifest.get("organisation", ""))
    if checkpoint is not None and checkpoint.get("organisation") != organisation:
        problems.append(
            f"checkpoint.json: it is for {checkpoint.get('organisation')!r}, the dossier for {organisation!r}"
        )
    seen: dict[str, tuple[int, str]] = {}
    handle = members.open("events.jsonl")
    result = None
    if handle is None:
        problems.append("events.jsonl: missing")
    else:
        try:
            header, records = read_export(handle, organisation=organisation)
        except ValueError as exc:
            problems.append(f"events.jsonl: {exc}")
        else:
            result = verify_records(
                records,
                organisation=organisation,
                checkpoints=[checkpoint] if checkpoint_ok and checkpoint else [],
                trusted_key_ids=trusted,
                files_seen=seen,
            )
            problem = result.problem or header_problem(header, result, organisation=organisation)
            if problem:
                problems.append(f"events.jsonl: {problem}")
            expected = manifest.get("events") or {}
            if not problem and (result.head_sequence, result.head_hash) != (
                expected.get("head_sequence"),
                expected.get("head_hash"),
            ):
                problems.append(
                    f"events.jsonl: ends at event {result.head_sequence} ({_short(result.head_hash)}), the manifest "
                    f"says {expected.get('head_sequence')} ({_short(expected.get('head_hash'))})"
                )

    listed = {"manifest.json", "manifest.sig"}
    files = manifest.get("files") or {}
    intact: set[str] = set()
    at: dict[str, int] = {}  # a file's problem line, so an evidence entry can add its label
    events_named = any(problem.startswith("events.jsonl:") for problem in problems)
    for name, digest in sorted(files.items()):
        listed.add(name)
        actual = members.sha256(name)
        if actual is None:
            at[name] = len(problems)
            problems.append(f"{name}: missing")
        elif actual == digest:
            intact.add(name)
        elif not (name == "events.jsonl" and events_named):  # the event that changed is named already
            at[name] = len(problems)
            problems.append(f"{name}: altered: its SHA-256 is {_short(actual)}, the manifest lists {_short(digest)}")
    included = 0
    for entry in manifest.get("evidence") or []:
        label = f"evidence {entry.get('title')!r} ({entry.get('kind')} #{entry.get('id')})"
        where = entry.get("path")
        if where and where in files:
            # Its bytes were checked above; the entry must name the same hash.
            if files[where] != entry.get("sha256"):
                problems.append(f"manifest.json: {label}: its SHA-256 differs from the one listed for {where}")
            elif where in intact:
                included += 1
            elif where in at:
                problems[at[where]] = problems[at[where]].replace(f"{where}: ", f"{where} ({label}): ", 1)
        elif where:
            listed.add(where)
            actual = members.sha256(where)
            if actual is None:
                problems.append(f"{where}: missing ({label})")
            elif actual != entry.get("sha256"):
                problems.append(
                    f"{where}: altered ({label}): its SHA-256 is {_short(actual)}, "
                    f"the manifest lists {_short(entry.get('sha256'))}"
                )
            else:
                included += 1
        recorded = seen.get(str(entry.get("stored_name")))
        if recorded and recorded[1] != entry.get("recorded_sha256"):
            problems.append(
                f"manifest.json: {label} lists SHA-256 {_short(entry.get('recorded_sha256'))}, "
                f"but event {recorded[0]} recorded {_short(recorded[1])} when the file was added"
            )
        if entry.get("sha256") != entry.get("recorded_sha256"):
            problems.append(f"{where or entry.get('stored_name')}: {label}: {entry.get('note') or 'hash differs'}")
    problems.extend(
        f"{name}: not listed in the manifest (added to the dossier?)" for name in members.names() if name not in listed
    )

    pilot = manifest.get("pilot") or {}
    trust = (
        f"key {pem_id} (trusted: given with --trusted-key)"
        if trusted_key_ids
        else f"key {pem_id}: taken from the dossier; compare it with the organisation's published key id "
        "(or pass --trusted-key)"
    )
    summary = (
        f"dossier for pilot {pilot.get('name')!r} of {organisation}: "
        f"{result.events_checked if result else 0} events to #{result.head_sequence if result else 0}, "
        f"checkpoint #{(checkpoint or {}).get('sequence')} signed {(checkpoint or {}).get('signed_at')}, "
        f"{len(manifest.get('files') or {})} files, {included} evidence files included and "
        f"{len(manifest.get('evidence') or []) - included} listed; {trust}"
    )
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Preflight audit export (events.jsonl) or dossier.")
    parser.add_argument("events", type=Path, nargs="?")
    parser.add_argument("--dossier", type=Path, help="an auditor's dossier (zip, or the folder it was unpacked into)")
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
    if args.dossier:
        problems, summary = verify_dossier(args.dossier, trusted_key_ids=trusted)
        if problems:
            print(f"BROKEN: {len(problems)} problem(s) in {args.dossier}:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"OK: {summary}")
        return 0
    if args.events is None:
        parser.error("give an export file (events.jsonl) or --dossier")
    paths = list(args.checkpoint)
    if args.anchor_dir:
        paths += sorted(args.anchor_dir.glob("*.json"))
    checkpoints = checkpoints_read(paths, organisation=args.organisation)
    hasher = (lambda name: sha256_file(args.files_dir / name)) if args.files_dir else None
    try:
        header, records = read_export(
            args.events, organisation=args.organisation, evidence_files=args.files_dir is not None
        )
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    result = verify_records(
        records,
        organisation=args.organisation,
        checkpoints=checkpoints,
        trusted_key_ids=trusted,
        file_hasher=hasher,
    )
    if header_bad := header_problem(header, result, organisation=args.organisation):
        result = dataclasses.replace(result, problem=header_bad)
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
