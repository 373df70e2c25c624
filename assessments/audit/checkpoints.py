"""Signing checkpoints, then timestamping and anchoring them, and deciding when one is due.

A checkpoint is signed after every AUDIT_CHECKPOINT_EVERY_EVENTS events (queued by
``audit_record`` once its transaction commits) or AUDIT_CHECKPOINT_EVERY_MINUTES
minutes (the minute job), whichever comes first, and only after the chain since
the previous checkpoint verifies. Signing is a short transaction; the RFC 3161
timestamp and the write to the anchor directory follow it, and either is retried
by the minute job if it fails, so an outage never loses the checkpoint itself.

Writing a checkpoint is evidence about the chain, not a product change, so it
records no audit event.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assessments.audit.anchor import AnchorConflict, anchor_checkpoint
from assessments.audit.chain import CHECKPOINT_FORMAT, VerifyResult, checkpoint_message, format_datetime
from assessments.audit.models import AnchorStatus, AuditChainHead, AuditCheckpoint, AuditEvent, TimestampStatus
from assessments.audit.selectors import checkpoints_due
from assessments.audit.signing import key_id, public_key_b64, signing_key_load
from assessments.audit.timestamp import TimestampError, timestamp_fetch
from assessments.audit.verify import audit_verify, audit_verify_tail, tsa_trusted_certificates
from assessments.organisations.models import Organisation

logger = logging.getLogger(__name__)

# A checkpoint lists the hash of every event since the previous one, at most this
# many (a chain that went unsigned for longer lists only its newest events).
MAX_LISTED = 1000
TSA_TIMEOUT_SECONDS = 10.0
# While one worker asks the TSA, others leave the checkpoint alone this long.
TIMESTAMP_LEASE = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class CheckpointOutcome:
    """What a signing attempt did: the new checkpoint, or why there is none."""

    checkpoint: AuditCheckpoint | None
    verification: VerifyResult | None
    skipped: str = ""


def _sign(
    *, organisation: Organisation, key: Ed25519PrivateKey, claim: int | None, at: tuple[int, str] | None
) -> AuditCheckpoint | None:
    """Sign ``at`` (or the current head) unless another signer moved past ``claim`` first."""
    public = key.public_key()
    now = timezone.now()
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(organisation=organisation)
        if claim is not None and head.checkpoint_sequence != claim:
            return None
        sequence, head_hash = at or (head.sequence, head.hash)
        first = max(1, min(head.checkpoint_sequence, sequence) + 1, sequence - MAX_LISTED + 1)
        hashes = list(
            AuditEvent.objects.filter(organisation=organisation, sequence__gte=first, sequence__lte=sequence)
            .order_by("sequence")
            .values_list("hash", flat=True)
        )
        if len(hashes) != sequence - first + 1 or (hashes and hashes[-1] != head_hash):
            raise RuntimeError(f"the chain of {organisation.slug} is not intact up to {sequence}; not signing")
        payload: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "organisation": organisation.slug,
            "sequence": sequence,
            "head_hash": head_hash,
            "signed_at": format_datetime(now),
            "key_id": key_id(public),
            "public_key": public_key_b64(public),
            "first_sequence": first,
            "event_hashes": hashes,
        }
        payload["signature"] = base64.b64encode(key.sign(checkpoint_message(payload))).decode("ascii")
        payload["algorithm"] = "Ed25519"
        stamping = bool(settings.AUDIT_TSA_URL)
        checkpoint = AuditCheckpoint.objects.create(
            organisation=organisation,
            sequence=sequence,
            head_hash=head_hash,
            signed_at=now,
            key_id=payload["key_id"],
            signature=payload["signature"],
            payload=payload,
            timestamp_status=TimestampStatus.NOT_TIMESTAMPED if stamping else TimestampStatus.NOT_REQUESTED,
            timestamp_error="not requested yet" if stamping else "",
            timestamp_retry_at=now if stamping else None,
            anchor_status=AnchorStatus.NOT_ANCHORED,
            anchor_error="not written yet",
        )
        AuditChainHead.objects.filter(pk=head.pk).update(checkpoint_sequence=max(head.checkpoint_sequence, sequence))
    return checkpoint


def checkpoint_create(*, organisation: Organisation) -> AuditCheckpoint:
    """Sign the current chain head now, then timestamp and anchor it. Does not verify first."""
    checkpoint = _sign(organisation=organisation, key=signing_key_load(), claim=None, at=None)
    assert checkpoint is not None  # without a claim nothing can pre-empt it
    return checkpoint_finish(checkpoint=checkpoint)


def checkpoint_sign(
    *, organisation: Organisation, full_verification: bool = False, only_if_new: bool = True
) -> CheckpointOutcome:
    """Verify, then sign the verified head: never a checkpoint over a broken chain.

    ``full_verification`` re-reads the whole chain (the hourly job, the command);
    otherwise only the tail after the newest trusted checkpoint is verified. The
    head's ``checkpoint_sequence`` is claimed with a compare-and-set, so when two
    signers race (a burst, a re-delivered job) only one signs.
    """
    key = signing_key_load()
    claim = AuditChainHead.objects.filter(organisation=organisation).values_list("checkpoint_sequence", flat=True)
    claimed = claim.first()
    if claimed is None:
        return CheckpointOutcome(None, None, "the organisation has no chain")
    result = (
        audit_verify(organisation=organisation) if full_verification else audit_verify_tail(organisation=organisation)
    )
    if not result.ok:
        logger.error("audit chain of %s is broken: %s; not signing", organisation.slug, result.problem)
        return CheckpointOutcome(None, result, f"the chain is broken: {result.problem}")
    if only_if_new and result.head_sequence <= claimed:
        return CheckpointOutcome(None, result, "no events since the last checkpoint")
    checkpoint = _sign(organisation=organisation, key=key, claim=claimed, at=(result.head_sequence, result.head_hash))
    if checkpoint is None:
        return CheckpointOutcome(None, result, "another signer signed first")
    return CheckpointOutcome(checkpoint_finish(checkpoint=checkpoint), result)


def checkpoint_sign_if_due(*, organisation: Organisation, now: dt.datetime) -> CheckpointOutcome:
    """Sign when AUDIT_CHECKPOINT_EVERY_EVENTS events or EVERY_MINUTES minutes have passed unsigned."""
    if organisation.pk not in checkpoints_due(now=now, organisation=organisation):
        return CheckpointOutcome(None, None, "no checkpoint is due")
    return checkpoint_sign(organisation=organisation)


def _retry_delay(attempts: int) -> dt.timedelta:
    """1, 2, 4 … minutes, at most an hour, between requests to a failing TSA."""
    return dt.timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def _timestamp(checkpoint: AuditCheckpoint, now: dt.datetime) -> None:
    claimed = AuditCheckpoint.objects.filter(
        pk=checkpoint.pk,
        timestamp_status=TimestampStatus.NOT_TIMESTAMPED,
        timestamp_retry_at=checkpoint.timestamp_retry_at,
    ).update(timestamp_retry_at=now + TIMESTAMP_LEASE)
    if not claimed:
        return  # another worker has it, or it is done
    attempts = checkpoint.timestamp_attempts + 1
    try:
        token, info = timestamp_fetch(
            url=settings.AUDIT_TSA_URL,
            message=checkpoint_message(checkpoint.payload),
            trusted=tsa_trusted_certificates(),
            timeout=TSA_TIMEOUT_SECONDS,
        )
    except (TimestampError, OSError, ValueError) as exc:
        logger.warning("checkpoint %s of %s not timestamped: %s", checkpoint.sequence, checkpoint.organisation_id, exc)
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(
            timestamp_error=str(exc)[:300] or type(exc).__name__,
            timestamp_attempts=attempts,
            timestamp_retry_at=now + _retry_delay(attempts),
        )
        return
    AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(
        timestamp_status=TimestampStatus.TIMESTAMPED,
        tsa_token=base64.b64encode(token).decode("ascii"),
        timestamped_at=info.gen_time,
        timestamp_error="",
        timestamp_attempts=attempts,
        timestamp_retry_at=None,
        # The token still has to join the anchored copy.
        anchor_status=AnchorStatus.NOT_ANCHORED,
        anchor_error="timestamp token not written yet",
    )


def _anchor(checkpoint: AuditCheckpoint) -> None:
    token = (
        base64.b64decode(checkpoint.tsa_token) if checkpoint.timestamp_status == TimestampStatus.TIMESTAMPED else None
    )
    try:
        anchor_checkpoint(payload=checkpoint.payload, token=token)
    except (OSError, AnchorConflict) as exc:
        logger.error("checkpoint %s of %s not anchored: %s", checkpoint.sequence, checkpoint.organisation_id, exc)
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(
            anchor_status=AnchorStatus.NOT_ANCHORED, anchor_error=str(exc)[:300] or type(exc).__name__
        )
        return
    AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(anchor_status=AnchorStatus.ANCHORED, anchor_error="")


def checkpoint_finish(*, checkpoint: AuditCheckpoint, now: dt.datetime | None = None) -> AuditCheckpoint:
    """Timestamp (when AUDIT_TSA_URL is set) and anchor a signed checkpoint; what fails is retried later."""
    now = now or timezone.now()
    retry_at = checkpoint.timestamp_retry_at
    if (
        checkpoint.timestamp_status == TimestampStatus.NOT_TIMESTAMPED
        and settings.AUDIT_TSA_URL
        and (retry_at is None or retry_at <= now)
    ):
        _timestamp(checkpoint, now)
        checkpoint.refresh_from_db()
    if checkpoint.anchor_status == AnchorStatus.NOT_ANCHORED:
        _anchor(checkpoint)
        checkpoint.refresh_from_db()
    return checkpoint
