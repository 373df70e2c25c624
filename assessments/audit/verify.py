"""Verifying and exporting an organisation's chain from the database.

The checks themselves live in chain.py (shared with the standalone verifier);
this module streams rows out of the database into them, adds every checkpoint
kept in the database and in the anchor directory, and compares those two sets.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import heapq
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from assessments.audit.anchor import Anchored, anchored_checkpoints
from assessments.audit.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    Problem,
    VerifyResult,
    checkpoint_message,
    checkpoint_problem,
    export_header,
    export_line,
    format_datetime,
    key_ids_parse,
    verify_records,
)
from assessments.audit.models import (
    AnchorStatus,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    AuditVerification,
    TimestampStatus,
)
from assessments.audit.signing import SigningKeyMissing, key_id, signing_key_load
from assessments.audit.timestamp import TimestampInvalid, timestamp_verify, tsa_certificates_load
from assessments.organisations.models import Organisation

CHUNK = 2000
# The hashed fields in their stored form (the organisation as its slug), then the hash.
ROW_FIELDS = ("organisation__slug", *(f for f in HASHED_FIELDS if f != "organisation"), "hash")


def event_records(*, organisation: Organisation, after: int = 0) -> Iterator[dict[str, Any]]:
    """The chain (from ``after + 1``) as plain records in sequence order, streamed in chunks."""
    rows = (
        AuditEvent.objects.filter(organisation=organisation, sequence__gt=after)
        .order_by("sequence")
        .values_list(*ROW_FIELDS)
        .iterator(chunk_size=CHUNK)
    )
    for row in rows:
        record = dict(zip(ROW_FIELDS, row, strict=True))
        record["organisation"] = record.pop("organisation__slug")
        record["occurred_at"] = format_datetime(record["occurred_at"])
        yield record


def _stored_file_hash(name: str) -> str | None:
    if not default_storage.exists(name):
        return None
    digest = hashlib.sha256()
    with default_storage.open(name, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a checkpoint object")
    return data


def trusted_key_ids(*, extra: Iterable[str] = ()) -> frozenset[str]:
    """Keys whose checkpoints are accepted: AUDIT_TRUSTED_KEY_IDS, ``extra``, and this host's own key.

    Raises ValueError for a malformed id, so a typo is reported rather than ignored.
    """
    ids = set(key_ids_parse([*settings.AUDIT_TRUSTED_KEY_IDS, *extra]))
    with contextlib.suppress(SigningKeyMissing, ValueError):  # without a local key, only the configured ids
        ids.add(key_id(signing_key_load().public_key()))
    return frozenset(ids)


def tsa_trusted_certificates() -> list[x509.Certificate]:
    return tsa_certificates_load(settings.AUDIT_TSA_CA_FILE) if settings.AUDIT_TSA_CA_FILE else []


def _order(payload: dict[str, Any]) -> tuple[int, str]:
    sequence = payload.get("sequence")
    return (sequence if isinstance(sequence, int) else -1, str(payload.get("signed_at", "")))


def _database_checkpoints(organisation: Organisation) -> Iterator[dict[str, Any]]:
    yield from (
        AuditCheckpoint.objects.filter(organisation=organisation)
        .order_by("sequence", "signed_at")
        .values_list("payload", flat=True)
        .iterator(chunk_size=200)
    )


def _anchored_payloads(organisation: Organisation) -> Iterator[dict[str, Any]]:
    for anchored in anchored_checkpoints(organisation=organisation.slug):
        if anchored.payload is not None:
            yield anchored.payload


def _every_checkpoint(*streams: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The union of several sequence-ordered streams, each distinct checkpoint once."""
    group_at: tuple[int, str] | None = None
    group: list[dict[str, Any]] = []
    for payload in heapq.merge(*streams, key=_order):
        if _order(payload) != group_at:
            group_at, group = _order(payload), []
        if payload in group:
            continue
        group.append(payload)
        yield payload


def _head_problem(organisation: Organisation, result: VerifyResult) -> Problem | None:
    """The head table must end where the chain ends: catches events appended or removed behind the app."""
    head = AuditChainHead.objects.filter(organisation=organisation).first()
    if head is None or (head.sequence, head.hash) == (result.head_sequence, result.head_hash):
        return None
    return Problem(
        min(head.sequence, result.head_sequence) + 1,
        "hash mismatch",
        f"the chain ends at {result.head_sequence} but the app's head is {head.sequence}",
    )


# --- the database against the anchor directory ------------------------------


@dataclasses.dataclass(frozen=True)
class _Summary:
    """What is compared between a database checkpoint and its anchored copy."""

    sequence: Any
    head_hash: Any
    key_id: Any
    signature: Any
    rest: str  # SHA-256 of every other field, so any difference shows

    @classmethod
    def of(cls, payload: dict[str, Any]) -> _Summary:
        others = {k: v for k, v in payload.items() if k not in {"sequence", "head_hash", "key_id", "signature"}}
        digest = hashlib.sha256(json.dumps(others, sort_keys=True).encode()).hexdigest()
        return cls(
            payload.get("sequence"), payload.get("head_hash"), payload.get("key_id"), payload.get("signature"), digest
        )

    def differences(self, other: _Summary) -> list[str]:
        names = {"rest": "other signed fields"}
        return [
            names.get(f.name, f.name.replace("_", " "))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def _token_problem(payload: dict[str, Any], token: bytes, trusted: list[x509.Certificate], where: str) -> str | None:
    try:
        timestamp_verify(token=token, message=checkpoint_message(payload), trusted=trusted)
    except (TimestampInvalid, ValueError) as exc:
        return f"the timestamp {where} does not hold: {exc}"
    return None


def anchor_problem(*, organisation: Organisation) -> Problem | None:
    """The first difference between the database's checkpoints and the anchored copies.

    Names a checkpoint missing from the database, one the anchor directory lacks,
    a copy whose signed fields or timestamp differ, or a timestamp that does not
    hold. "First" is the lowest checkpoint sequence.
    """
    found: list[tuple[int, Problem]] = []
    tsa = tsa_trusted_certificates()

    def note(sequence: Any, kind: str, detail: str) -> None:
        found.append((sequence if isinstance(sequence, int) else -1, Problem(None, kind, detail)))

    anchored: dict[str, list[tuple[Anchored, _Summary]]] = {}
    for copy in anchored_checkpoints(organisation=organisation.slug):
        if copy.payload is None:
            note(copy.sequence, "checkpoint differs from anchor", f"anchored file {copy.name} {copy.error}")
            continue
        if copy.token is not None and (bad := _token_problem(copy.payload, copy.token, tsa, f"in {copy.name}")):
            note(copy.sequence, "bad timestamp", bad)
        # Only the summary is kept, not the payload's list of hashes: memory stays small.
        slim = Anchored(copy.name, copy.sequence, None, copy.token)
        anchored.setdefault(str(copy.payload.get("signed_at")), []).append((slim, _Summary.of(copy.payload)))

    rows = (
        AuditCheckpoint.objects.filter(organisation=organisation)
        .order_by("sequence", "signed_at")
        .values_list(
            "sequence", "head_hash", "payload", "anchor_status", "anchor_error", "timestamp_status", "tsa_token"
        )
        .iterator(chunk_size=200)
    )
    for sequence, head_hash, payload, anchor_status, anchor_error, stamp_status, token_b64 in rows:
        label = f"checkpoint #{sequence} signed {payload.get('signed_at')}"
        token: bytes | None = None
        if stamp_status == TimestampStatus.TIMESTAMPED:
            try:
                token = base64.b64decode(token_b64, validate=True)
            except (binascii.Error, ValueError):
                token = b""
            if bad := _token_problem(payload, token, tsa, f"of {label}"):
                note(sequence, "bad timestamp", bad)
        summary = _Summary.of(payload)
        copies = anchored.pop(str(payload.get("signed_at")), [])
        if not copies:
            why = f" (anchoring failed: {anchor_error})" if anchor_status == AnchorStatus.NOT_ANCHORED else ""
            note(
                sequence, "checkpoint not anchored", f"{label} is in the database but not in the anchor directory{why}"
            )
        for copy, copy_summary in copies:
            if differing := summary.differences(copy_summary):
                note(
                    min(sequence, copy.sequence),
                    "checkpoint differs from anchor",
                    f"{label}: {', '.join(differing)} differ from the anchored copy {copy.name}",
                )
            if token and copy.token is None:
                note(
                    sequence, "checkpoint not anchored", f"{label}: its timestamp token is not in the anchor directory"
                )
            elif token and copy.token != token:
                note(sequence, "checkpoint differs from anchor", f"{label}: its timestamp differs from {copy.name}")
        if (sequence, head_hash) != (summary.sequence, summary.head_hash):
            note(sequence, "checkpoint differs from anchor", f"{label}: its columns differ from its signed payload")
    for copies in anchored.values():
        for copy, copy_summary in copies:
            note(
                copy.sequence,
                "checkpoint missing from database",
                f"checkpoint #{copy_summary.sequence} anchored as {copy.name} is not in the database",
            )
    return min(found, key=lambda item: item[0])[1] if found else None


# --- verification ---------------------------------------------------------------


def _record(organisation: Organisation, result: VerifyResult) -> None:
    AuditVerification.objects.create(
        organisation=organisation,
        verified_at=timezone.now(),
        head_sequence=result.head_sequence,
        events_checked=result.events_checked,
        files_checked=result.files_checked,
        ok=result.ok,
        first_bad_sequence=result.problem.sequence if result.problem else None,
        reason=str(result.problem)[:300] if result.problem else "",
    )


def audit_verify(
    *,
    organisation: Organisation,
    checkpoint: dict[str, Any] | None = None,
    record_result: bool = True,
    extra_trusted_key_ids: Iterable[str] = (),
) -> VerifyResult:
    """Verify the whole chain, its stored evidence files, and every checkpoint.

    Every checkpoint in the database and in the anchor directory (and ``checkpoint``,
    a file given by hand) must be signed by a trusted key and agree with each event
    hash it signed, so rewriting is located at the first rewritten event. Then the
    head table must match the chain's end, and the database's checkpoints the
    anchored copies (with their RFC 3161 timestamps).
    """
    try:
        trusted = trusted_key_ids(extra=extra_trusted_key_ids)
    except ValueError as exc:
        result = VerifyResult(0, 0, 0, "", Problem(None, "untrusted checkpoint key", f"AUDIT_TRUSTED_KEY_IDS: {exc}"))
    else:
        streams: list[Iterable[dict[str, Any]]] = [
            _database_checkpoints(organisation),
            _anchored_payloads(organisation),
        ]
        if checkpoint is not None:
            streams.append([checkpoint])
        result = verify_records(
            event_records(organisation=organisation),
            organisation=organisation.slug,
            checkpoints=_every_checkpoint(*streams),
            trusted_key_ids=trusted,
            file_hasher=_stored_file_hash,
        )
        if result.ok:
            problem = _head_problem(organisation, result) or anchor_problem(organisation=organisation)
            result = dataclasses.replace(result, problem=problem)
    if record_result:
        _record(organisation, result)
    return result


def audit_verify_tail(*, organisation: Organisation) -> VerifyResult:
    """Verify only what the newest trusted checkpoint does not already vouch for.

    The checkpoint job runs this before it signs: the newest checkpoint must be
    trusted and its head event unchanged (so nothing before it was rewritten), and
    the events after it must chain on from it. Without such a checkpoint, the whole
    chain is verified. A failure is recorded for the badge; success is not, since
    the old events were not re-read.
    """
    newest = AuditCheckpoint.objects.filter(organisation=organisation).order_by("-sequence", "-signed_at").first()
    try:
        trusted = trusted_key_ids()
    except ValueError:
        trusted = frozenset()
    if newest is None or checkpoint_problem(newest.payload, trusted_key_ids=trusted) is not None:
        return audit_verify(organisation=organisation)
    sequence, head_hash = newest.payload["sequence"], newest.payload["head_hash"]
    if sequence > 0:
        stored = AuditEvent.objects.filter(organisation=organisation, sequence=sequence).values_list("hash", flat=True)
        if list(stored) != [head_hash]:
            return audit_verify(organisation=organisation)
    result = verify_records(
        event_records(organisation=organisation, after=sequence),
        organisation=organisation.slug,
        file_hasher=_stored_file_hash,
        start_sequence=sequence + 1,
        start_hash=head_hash,
    )
    if result.ok:
        result = dataclasses.replace(result, problem=_head_problem(organisation, result))
    if not result.ok:
        _record(organisation, result)
    return result


def audit_export(*, organisation: Organisation, out: IO[bytes], through: int | None = None) -> int:
    """Write the chain up to ``through`` (default: the head now) in export format 2; returns the count.

    The first line is a header (format, organisation, the head the file ends at);
    each further line is exactly an event's canonical bytes, which the verifier
    hashes as stored (README, "Verifying").
    """
    events = AuditEvent.objects.filter(organisation=organisation)
    if through is not None:
        events = events.filter(sequence__lte=through)
    head = events.order_by("-sequence").values_list("sequence", "hash").first() or (0, GENESIS_HASH)
    out.write(export_header(organisation=organisation.slug, head_sequence=head[0], head_hash=head[1]) + b"\n")
    count = 0
    for record in event_records(organisation=organisation):
        if record["sequence"] > head[0]:
            break
        out.write(export_line(record) + b"\n")
        count += 1
    return count


def checkpoint_create(*, organisation: Organisation) -> AuditCheckpoint:
    """Sign the current head now (kept here for existing callers; see checkpoints.py)."""
    from assessments.audit.checkpoints import checkpoint_create as create

    return create(organisation=organisation)
