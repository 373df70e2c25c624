"""Review meetings, the decisions (signatures) reviewers record in them, comments and conditions.

A signature binds to a fingerprint of exactly what was reviewed (``fingerprint.py``); the
readiness gate (``selectors.readiness_gates``) compares it with the assessment as it is now.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from assessments.organisations.models import Role
from assessments.pilots.models import Assessment, Pilot, Response, Stage

# The four roles whose sign-off makes a pilot ready, in the order pages list them.
SIGNING_ROLES: tuple[str, ...] = (Role.DELIVERY, Role.SECURITY, Role.RISK, Role.PRODUCT)
# Who may sit in a meeting: the four signing roles, the pilot's owners presenting, observers.
PARTICIPANT_ROLES: tuple[str, ...] = (*SIGNING_ROLES, Role.OWNER, Role.VIEWER, Role.ADMIN)


class MeetingStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


# Meetings where decisions may still be recorded and the agenda worked through.
OPEN_MEETING_STATUSES = frozenset({MeetingStatus.SCHEDULED, MeetingStatus.IN_PROGRESS})


class ReviewMeeting(models.Model):
    """The joint review of one pilot's assessment by delivery, security, risk and product.

    ``uid`` and ``sequence`` are the iCalendar identity of the invitation: every change of
    time, place or people, and the cancellation, is sent with the same UID and a higher
    SEQUENCE so calendars update the event instead of adding a second one.
    """

    pilot = models.ForeignKey(Pilot, on_delete=models.CASCADE, related_name="review_meetings")
    assessment = models.ForeignKey(Assessment, on_delete=models.PROTECT, related_name="review_meetings")
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sequence = models.PositiveIntegerField(default=0)
    scheduled_at = models.DateTimeField()
    duration_minutes = models.PositiveSmallIntegerField(default=60)
    location = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=MeetingStatus.choices, default=MeetingStatus.SCHEDULED)
    minutes = models.TextField(blank=True, help_text="Markdown.")
    organiser = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=MeetingStatus.values), name="meeting_status_valid"),
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=5) & Q(duration_minutes__lte=480),
                name="meeting_duration_range",
                violation_error_message="A review lasts between 5 minutes and 8 hours.",
            ),
            models.CheckConstraint(
                condition=Q(status=MeetingStatus.CLOSED, closed_at__isnull=False)
                | (~Q(status=MeetingStatus.CLOSED) & Q(closed_at__isnull=True)),
                name="meeting_closed_at_iff_closed",
            ),
        ]
        indexes = [models.Index(fields=["pilot", "status", "scheduled_at"], name="meeting_pilot_next")]
        ordering = ["-scheduled_at"]

    def __str__(self) -> str:
        return f"Review of {self.pilot} on {self.scheduled_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_MEETING_STATUSES


class Participant(models.Model):
    """One person in a meeting, with the role they represent there."""

    meeting = models.ForeignKey(ReviewMeeting, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meeting", "user", "role"], name="participant_unique_role"),
            models.CheckConstraint(condition=Q(role__in=PARTICIPANT_ROLES), name="participant_role_valid"),
        ]
        ordering = ["meeting", "role", "user_id"]

    def __str__(self) -> str:
        return f"{self.user} as {self.get_role_display()}"


class DecisionKind(models.TextChoices):
    APPROVE = "approve", "Approve"
    APPROVE_WITH_CONDITIONS = "approve_with_conditions", "Approve with conditions"
    REJECT = "reject", "Reject"


APPROVING = frozenset({DecisionKind.APPROVE, DecisionKind.APPROVE_WITH_CONDITIONS})


class Decision(models.Model):
    """A reviewer's signed decision for one role in one meeting.

    It stores the fingerprint of what was reviewed, the snapshot it was computed from
    (so a later change can be shown as a diff) and the audit-chain head at that moment.
    A person signs a role once per meeting; the pilot's owners may co-sign a role only
    after someone else has signed it (the service enforces that).
    """

    meeting = models.ForeignKey(ReviewMeeting, on_delete=models.PROTECT, related_name="decisions")
    role = models.CharField(max_length=20, choices=Role.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=30, choices=DecisionKind.choices)
    comment = models.TextField(blank=True)
    must_change = models.TextField(blank=True, help_text="What must change (required for a rejection).")
    signer_owns_pilot = models.BooleanField(default=False)
    fingerprint = models.CharField(max_length=64)
    snapshot = models.JSONField()
    audit_head_sequence = models.PositiveBigIntegerField()
    audit_head_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meeting", "role", "signer"], name="decision_once_per_role_per_meeting"),
            models.CheckConstraint(condition=Q(role__in=SIGNING_ROLES), name="decision_role_signs"),
            models.CheckConstraint(condition=Q(decision__in=DecisionKind.values), name="decision_kind_valid"),
            models.CheckConstraint(
                condition=~Q(decision=DecisionKind.REJECT) | ~Q(must_change=""),
                name="decision_reject_names_what_must_change",
                violation_error_message="Say what must change before you would approve.",
            ),
            models.CheckConstraint(
                condition=Q(fingerprint__regex=r"^[0-9a-f]{64}$"), name="decision_fingerprint_sha256"
            ),
        ]
        ordering = ["meeting", "signed_at"]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.get_decision_display()} by {self.signer}"


class Comment(models.Model):
    """A comment on one criterion of an assessment; ``parent`` is the first comment of its thread."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="comments")
    pilot = models.ForeignKey(Pilot, on_delete=models.CASCADE, related_name="comments")
    meeting = models.ForeignKey(
        ReviewMeeting, on_delete=models.SET_NULL, null=True, blank=True, related_name="comments"
    )
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    mentioned = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(body=""), name="comment_has_text"),
        ]
        ordering = ["response", "created_at"]

    def __str__(self) -> str:
        return f"{self.author}: {self.body[:40]}"


class ConditionStatus(models.TextChoices):
    OPEN = "open", "Open"
    MET = "met", "Met"
    WAIVED = "waived", "Waived"


class Condition(models.Model):
    """Something a reviewer requires, with an owner and a due date, tied to a criterion.

    Only the role that raised it may waive it, and a waiver says why. An open condition
    past its due date keeps the pilot from being ready; its owner is mailed once.
    """

    pilot = models.ForeignKey(Pilot, on_delete=models.CASCADE, related_name="review_conditions")
    response = models.ForeignKey(Response, on_delete=models.PROTECT, related_name="review_conditions")
    meeting = models.ForeignKey(
        ReviewMeeting, on_delete=models.SET_NULL, null=True, blank=True, related_name="conditions"
    )
    text = models.TextField()
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    raised_role = models.CharField(max_length=20, choices=Role.choices)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    due_date = models.DateField()
    status = models.CharField(max_length=10, choices=ConditionStatus.choices, default=ConditionStatus.OPEN)
    resolution = models.TextField(blank=True, help_text="How it was met, or why it was waived.")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ConditionStatus.values), name="condition_status_valid"),
            models.CheckConstraint(condition=Q(raised_role__in=SIGNING_ROLES), name="condition_raised_by_a_role"),
            models.CheckConstraint(condition=~Q(text=""), name="condition_has_text"),
            models.CheckConstraint(
                condition=~Q(status=ConditionStatus.WAIVED) | ~Q(resolution=""),
                name="condition_waiver_has_reason",
                violation_error_message="Say why the condition is waived.",
            ),
            models.CheckConstraint(
                condition=(Q(status=ConditionStatus.OPEN) & Q(resolved_at__isnull=True))
                | (~Q(status=ConditionStatus.OPEN) & Q(resolved_at__isnull=False)),
                name="condition_resolved_iff_closed",
            ),
        ]
        indexes = [models.Index(fields=["status", "due_date"], name="condition_open_due")]
        ordering = ["due_date", "pk"]

    def __str__(self) -> str:
        return self.text[:60]


class GateOverride(models.Model):
    """An administrator moving a pilot to production although the readiness gate said no.

    Written by ``pilot_update`` in the same transaction (and audit event) as the stage
    change; shown on the pilot page and in every later report, with the reasons the gate
    gave at that moment.
    """

    pilot = models.ForeignKey(Pilot, on_delete=models.CASCADE, related_name="gate_overrides")
    assessment = models.ForeignKey(Assessment, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    stage_from = models.CharField(max_length=20, choices=Stage.choices)
    stage_to = models.CharField(max_length=20, choices=Stage.choices)
    justification = models.TextField()
    gate_reasons = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(justification=""), name="override_has_justification"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.pilot} to {self.stage_to} by {self.actor}"
