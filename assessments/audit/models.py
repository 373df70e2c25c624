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
    """The newest event of an organisation's chain; locked while appending so the chain never forks."""

    organisation = models.OneToOneField(Organisation, on_delete=models.PROTECT, related_name="audit_head")
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"{self.organisation} head #{self.sequence}"


class AuditCheckpoint(models.Model):
    """A signed statement of a chain head at a moment, kept here and as a JSON file."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="audit_checkpoints")
    sequence = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=64)
    signature = models.CharField(max_length=200)
    payload = models.JSONField()

    class Meta:
        ordering = ["organisation", "-sequence", "-signed_at"]

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
