"""Verifying, exporting and checkpointing an organisation's chain from the database.

The checks themselves live in chain.py (shared with the standalone verifier);
this module streams rows out of the database into them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from assessments.audit.chain import (
    CHECKPOINT_FORMAT,
    HASHED_FIELDS,
    Problem,
    VerifyResult,
    checkpoint_message,
    format_datetime,
    verify_records,
)
from assessments.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent, AuditVerification
from assessments.audit.signing import key_id, public_key_b64, signing_key_load
from assessments.organisations.models import Organisation

CHUNK = 2000
# The hashed fields in their stored form (the organisation as its slug), then the hash.
ROW_FIELDS = ("organisation__slug", *(f for f in HASHED_FIELDS if f != "organisation"), "hash")


def event_records(*, organisation: Organisation) -> Iterator[dict[str, Any]]:
    """The chain as plain records in sequence order, streamed in chunks."""
    rows = (
        AuditEvent.objects.filter(organisation=organisation)
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


def _trusted_key_id() -> str | None:
    try:
        return key_id(signing_key_load().public_key())
    except Exception:  # no key configured: the checkpoint's own key is all we can check
        return None


def audit_verify(
    *, organisation: Organisation, checkpoint: dict[str, Any] | None = None, record_result: bool = True
) -> VerifyResult:
    """Verify the chain (and stored evidence files) against the newest or a given checkpoint.

    Also compares the last event with the chain head table, which catches events
    appended behind the app's back.
    """
    if checkpoint is None:
        stored = AuditCheckpoint.objects.filter(organisation=organisation).order_by("-sequence", "-signed_at").first()
        checkpoint = stored.payload if stored else None
    result = verify_records(
        event_records(organisation=organisation),
        organisation=organisation.slug,
        checkpoint=checkpoint,
        trusted_key_id=_trusted_key_id(),
        file_hasher=_stored_file_hash,
    )
    if result.ok:
        head = AuditChainHead.objects.filter(organisation=organisation).first()
        if head is not None and (head.sequence, head.hash) != (result.head_sequence, result.head_hash):
            first = min(head.sequence, result.head_sequence) + 1
            result = VerifyResult(
                result.events_checked,
                result.files_checked,
                result.head_sequence,
                result.head_hash,
                Problem(
                    first,
                    "hash mismatch",
                    f"the chain ends at {result.head_sequence} but the app's head is {head.sequence}",
                ),
            )
    if record_result:
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
    return result


def audit_export(*, organisation: Organisation, out: IO[str]) -> int:
    """Write the chain as JSON Lines (every hashed field plus ``hash``); returns the count."""
    count = 0
    for record in event_records(organisation=organisation):
        out.write(json.dumps(record, sort_keys=True, ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


def checkpoint_create(*, organisation: Organisation) -> AuditCheckpoint:
    """Sign the current chain head and keep it in the table and as a JSON file.

    Writing a checkpoint is itself evidence about the chain, not a product change,
    so it records no audit event.
    """
    key = signing_key_load()
    public = key.public_key()
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(organisation=organisation)
        payload: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "organisation": organisation.slug,
            "sequence": head.sequence,
            "head_hash": head.hash,
            "signed_at": format_datetime(timezone.now()),
            "key_id": key_id(public),
            "public_key": public_key_b64(public),
        }
        payload["signature"] = base64.b64encode(key.sign(checkpoint_message(payload))).decode("ascii")
        payload["algorithm"] = "Ed25519"
        checkpoint = AuditCheckpoint.objects.create(
            organisation=organisation,
            sequence=head.sequence,
            head_hash=head.hash,
            signed_at=timezone.now(),
            key_id=payload["key_id"],
            signature=payload["signature"],
            payload=payload,
        )
    directory = Path(settings.AUDIT_CHECKPOINT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{organisation.slug}-{head.sequence:010d}-{checkpoint.pk}.json"
    target.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return checkpoint
