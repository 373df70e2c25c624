"""The hash-chained audit trail: one append-only chain of events per organisation."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from assessments.organisations.models import Organisation

GENESIS_HASH = "0" * 64


class ActorType(models.TextChoices):
    USER = "user", "User"
    SYSTEM = "system", "System job"


class AuditEvent(models.Model):
    """One change, hashed together with the previous event's hash.

    Rows are never updated or deleted (on PostgreSQL a trigger enforces it).
    ``hash`` is SHA-256 over the canonical encoding described in the README.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="audit_events")
    sequence = models.PositiveBigIntegerField()
    occurred_at = models.DateTimeField()
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64)
    pilot_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    changes = models.JSONField(default=dict)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "sequence"], name="audit_unique_sequence"),
            models.UniqueConstraint(fields=["organisation", "hash"], name="audit_unique_hash"),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="audit_sequence_positive"),
            models.CheckConstraint(condition=Q(actor_type__in=ActorType.values), name="audit_actor_type_valid"),
        ]
        indexes = [models.Index(fields=["organisation", "pilot_id", "-sequence"], name="audit_pilot_feed")]
        ordering = ["organisation", "sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """The newest event of an organisation's chain; locked while appending so the chain never forks.

    ``checkpoint_sequence`` is the head the newest checkpoint signed: appends compare
    against it to decide when the next checkpoint is due, and signers claim the next
    checkpoint by moving it (compare-and-set), so two signers never sign the same tail.
    """

    organisation = models.OneToOneField(Organisation, on_delete=models.PROTECT, related_name="audit_head")
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    checkpoint_sequence = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.organisation} head #{self.sequence}"


class TimestampStatus(models.TextChoices):
    NOT_REQUESTED = "not_requested", "Not requested (no time-stamping authority configured)"
    NOT_TIMESTAMPED = "not_timestamped", "Not timestamped yet (will retry)"
    TIMESTAMPED = "timestamped", "Timestamped"


class AnchorStatus(models.TextChoices):
    NOT_ANCHORED = "not_anchored", "Not anchored yet (will retry)"
    ANCHORED = "anchored", "Anchored"


class AuditCheckpoint(models.Model):
    """A signed statement of a chain head at a moment.

    ``payload`` is the signed JSON, also written once to the anchor directory; an
    RFC 3161 token (``tsa_token``, base64 DER) proves it existed at ``timestamped_at``.
    Timestamping and anchoring happen after the row commits and are retried until
    done, so a TSA or disk outage never loses the checkpoint itself.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="audit_checkpoints")
    sequence = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=64)
    signature = models.CharField(max_length=200)
    payload = models.JSONField()
    timestamp_status = models.CharField(
        max_length=20, choices=TimestampStatus.choices, default=TimestampStatus.NOT_REQUESTED
    )
    tsa_token = models.TextField(blank=True)
    timestamped_at = models.DateTimeField(null=True, blank=True)
    timestamp_error = models.CharField(max_length=300, blank=True)
    timestamp_attempts = models.PositiveIntegerField(default=0)
    timestamp_retry_at = models.DateTimeField(null=True, blank=True)
    anchor_status = models.CharField(max_length=20, choices=AnchorStatus.choices, default=AnchorStatus.NOT_ANCHORED)
    anchor_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["organisation", "-sequence", "-signed_at"]
        indexes = [models.Index(fields=["organisation", "-sequence"], name="audit_checkpoint_newest")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(timestamp_status=TimestampStatus.TIMESTAMPED)
                    & ~Q(tsa_token="")
                    & Q(timestamped_at__isnull=False)
                    & Q(timestamp_error="")
                    & Q(timestamp_retry_at__isnull=True)
                )
                | (
                    Q(timestamp_status=TimestampStatus.NOT_TIMESTAMPED)
                    & Q(tsa_token="")
                    & Q(timestamped_at__isnull=True)
                    & ~Q(timestamp_error="")
                    & Q(timestamp_retry_at__isnull=False)
                )
                | (
                    Q(timestamp_status=TimestampStatus.NOT_REQUESTED)
                    & Q(tsa_token="")
                    & Q(timestamped_at__isnull=True)
                    & Q(timestamp_retry_at__isnull=True)
                ),
                name="checkpoint_timestamp_status_consistent",
            ),
            models.CheckConstraint(
                condition=(Q(anchor_status=AnchorStatus.ANCHORED) & Q(anchor_error=""))
                | (Q(anchor_status=AnchorStatus.NOT_ANCHORED) & ~Q(anchor_error="")),
                name="checkpoint_anchor_error_iff_not_anchored",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation} checkpoint #{self.sequence}"


class AuditVerification(models.Model):
    """The outcome of one verification run, shown as the integrity badge.

    It describes the chain rather than changing the product, so writing it
    records no audit event of its own.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="audit_verifications")
    verified_at = models.DateTimeField()
    head_sequence = models.PositiveBigIntegerField()
    events_checked = models.PositiveBigIntegerField()
    files_checked = models.PositiveIntegerField(default=0)
    ok = models.BooleanField()
    first_bad_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["organisation", "-verified_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(ok=True) & Q(reason="")) | (Q(ok=False) & ~Q(reason="")),
                name="verification_reason_iff_broken",
            )
        ]

    def __str__(self) -> str:
        return f"{self.organisation} verified {'ok' if self.ok else 'BROKEN'} at {self.verified_at}"
