"""Reads of the audit trail: a pilot's activity feed, the integrity badge, checkpoint freshness."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, F, Max, OuterRef, Q, Subquery

from assessments.audit.models import (
    AnchorStatus,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    AuditVerification,
    TimestampStatus,
)
from assessments.organisations.models import Organisation

FIELD_LABELS = {
    "status": "status",
    "justification": "justification",
    "owner": "owner",
    "due_date": "due date",
    "stage": "stage",
}


@dataclass(frozen=True)
class ActivityRow:
    sequence: int
    occurred_at: dt.datetime
    actor: str
    action: str
    sentence: str
    changes: dict[str, Any]


# Changes that record a person by account id; the feed shows the person's name instead.
PERSON_FIELDS = frozenset({"owner", "technical_owner", "business_owner"})


def _value(value: Any) -> str:
    if value in (None, ""):
        return "nothing"
    text = str(value).replace("_", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _people(events: list[AuditEvent]) -> dict[str, str]:
    """Names of the accounts the events' person fields refer to, in one query."""
    ids = {
        str(value)
        for event in events
        for name, pair in (event.changes or {}).items()
        if name in PERSON_FIELDS and isinstance(pair, list)
        for value in pair
        if value not in (None, "")
    }
    if not ids:
        return {}
    people = User.objects.filter(pk__in=[int(i) for i in ids if i.isdigit()]).only(
        "username", "first_name", "last_name"
    )
    return {str(u.pk): u.get_full_name() or u.get_username() for u in people}


def _sentence(event: AuditEvent, people: dict[str, str] | None = None) -> str:
    people = people or {}

    def shown(name: str, value: Any) -> str:
        if name in PERSON_FIELDS and value not in (None, ""):
            return people.get(str(value), "a former member")
        return _value(value)

    changes: dict[str, Any] = event.changes or {}
    who = event.actor_label
    code = ""
    if isinstance(changes.get("criterion"), list):
        code = next((c for c in changes["criterion"] if c), "")
    verb, _, _ = event.action.partition(".")
    if event.action == "response.updated":
        parts = [
            f"{FIELD_LABELS.get(name, name)} from {shown(name, pair[0])} to {shown(name, pair[1])}"
            for name, pair in changes.items()
            if name != "criterion"
        ]
        return f"{who} changed {code} " + ("; ".join(parts) if parts else "(no change)")
    if event.action == "evidence.added":
        title = changes.get("title", [None, ""])[1]
        return f"{who} added evidence “{_value(title)}” to {code}"
    if event.action == "evidence.removed":
        return f"{who} removed evidence from {code}"
    if event.action == "pilot.created":
        return f"{who} created the pilot"
    if event.action == "pilot.updated":
        fields = ", ".join(f"{n.replace('_', ' ')} to {shown(n, p[1])}" for n, p in changes.items())
        return f"{who} set {fields}" if fields else f"{who} saved the profile unchanged"
    if event.action == "assessment.migrated":
        framework = changes.get("framework", [None, None])[1]
        return f"{who} moved the pilot to {_value(framework)}"
    if event.action.startswith("stop_condition."):
        return f"{who} {event.action.split('.')[1]} a stop condition"
    after = {name: pair[1] for name, pair in changes.items() if isinstance(pair, list) and len(pair) == 2}
    before = {name: pair[0] for name, pair in changes.items() if isinstance(pair, list) and len(pair) == 2}
    sentence = _EVENT_SENTENCES.get(event.action)
    if sentence is not None:
        return f"{who} " + sentence(after, before, code)
    return f"{who}: {event.action.replace('.', ' ').replace('_', ' ')} ({verb})"


def _quoted(value: Any) -> str:
    return f"“{_value(value)}”" if value not in (None, "") else ""


_ROLE_NAMES = {"delivery": "Delivery", "security": "Security", "risk": "Risk & compliance", "product": "Product"}
_DECISIONS = {"approve": "approved", "approve_with_conditions": "approved with conditions", "reject": "rejected"}

# How the activity feed says what an event did (after the actor's name).
_EVENT_SENTENCES: dict[str, Any] = {
    "linked_system.added": lambda a, b, c: f"linked the system {_quoted(a.get('name'))}",
    "linked_system.changed": lambda a, b, c: (
        "changed a linked system's " + (", ".join(sorted(k.replace("_", " ") for k in a)) or "settings")
    ),
    "check.created": lambda a, b, c: f"added the check {_quoted(a.get('name'))}" + (f" on {c}" if c else ""),
    "check.rule_changed": lambda a, b, c: (
        "changed a check rule: "
        + "; ".join(f"{k.replace('_', ' ')} {_value(b.get(k))} → {_value(v)}" for k, v in sorted(a.items()))
    ),
    "check.run_requested": lambda a, b, c: "asked for a re-check",
    "check_run.finished": lambda a, b, c: (
        f"ran {_quoted(a.get('check'))}: " + (str(a.get("verdict") or a.get("status") or ""))
    ),
    "check_run.regressed": lambda a, b, c: f"ran {_quoted(a.get('check'))}: it passed before and fails now",
    "alert_webhook.set": lambda a, b, c: f"set the alert webhook to {_value(a.get('webhook_host'))}",
    "alert_webhook.replaced": lambda a, b, c: f"replaced the alert webhook ({_value(a.get('webhook_host'))})",
    "alert_webhook.removed": lambda a, b, c: "removed the alert webhook",
    "decision.signed": lambda a, b, c: (
        f"{_DECISIONS.get(str(a.get('decision')), 'signed')} for "
        f"{_ROLE_NAMES.get(str(a.get('role')), _value(a.get('role')))}"
    ),
    "comment.added": lambda a, b, c: f"commented{' on ' + c if c else ''}",
    "condition.raised": lambda a, b, c: f"raised a condition{' on ' + c if c else ''}: {_quoted(a.get('text'))}",
    "condition.met": lambda a, b, c: "marked a condition met",
    "condition.waived": lambda a, b, c: "waived a condition",
    "meeting.scheduled": lambda a, b, c: "scheduled a review meeting",
    "meeting.updated": lambda a, b, c: "changed a review meeting",
    "meeting.started": lambda a, b, c: "started a review meeting",
    "meeting.closed": lambda a, b, c: "closed a review meeting",
    "meeting.cancelled": lambda a, b, c: "cancelled a review meeting",
}


def activity_for_pilot(*, pilot_id: int, limit: int = 50) -> list[ActivityRow]:
    """Newest first: who did what to this pilot, in two queries (the events, the people they name)."""
    events = list(AuditEvent.objects.filter(pilot_id=pilot_id).order_by("-sequence")[:limit])
    people = _people(events)
    return [
        ActivityRow(
            sequence=e.sequence,
            occurred_at=e.occurred_at,
            actor=e.actor_label,
            action=e.action,
            sentence=_sentence(e, people),
            changes=e.changes,
        )
        for e in events
    ]


@dataclass(frozen=True)
class IntegrityBadge:
    """What the UI and reports show about the chain: its head, the last verification and checkpoint."""

    head_sequence: int
    head_hash: str
    verified: bool
    verified_ok: bool
    verified_at: dt.datetime | None
    verified_head: int | None
    problem: str
    checkpoint_sequence: int | None
    checkpoint_at: dt.datetime | None
    checkpoint_timestamp_status: str = ""
    checkpoint_timestamp_error: str = ""
    checkpoint_anchor_status: str = ""
    checkpoint_anchor_error: str = ""

    @property
    def unverified_events(self) -> int:
        return self.head_sequence - (self.verified_head or 0)

    @property
    def unsigned_events(self) -> int:
        """Events newer than the newest signed checkpoint."""
        return max(0, self.head_sequence - (self.checkpoint_sequence or 0))

    @property
    def checkpoint_timestamped(self) -> bool:
        return self.checkpoint_timestamp_status == TimestampStatus.TIMESTAMPED

    @property
    def checkpoint_not_timestamped(self) -> bool:
        return self.checkpoint_timestamp_status == TimestampStatus.NOT_TIMESTAMPED

    @property
    def checkpoint_not_anchored(self) -> bool:
        return self.checkpoint_anchor_status == AnchorStatus.NOT_ANCHORED


def audit_head_sequence(*, organisation: Organisation) -> int:
    """How many audited writes the organisation has seen: a version of everything it holds."""
    return AuditChainHead.objects.filter(organisation=organisation).values_list("sequence", flat=True).first() or 0


def _aware(value: dt.datetime | str | None) -> dt.datetime | None:
    """A datetime read by raw SQL: SQLite hands back naive UTC (or text), PostgreSQL aware."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _badge_sql() -> str:
    head, checkpoint, check = (m._meta.db_table for m in (AuditChainHead, AuditCheckpoint, AuditVerification))
    return f"""
        SELECT h.sequence, h.hash,
               c.sequence, c.signed_at, c.timestamp_status, c.timestamp_error, c.anchor_status, c.anchor_error,
               v.verified_at, v.head_sequence, v.ok, v.reason
        FROM {head} h
        LEFT JOIN {checkpoint} c ON c.id = (
            SELECT id FROM {checkpoint} WHERE organisation_id = h.organisation_id
            ORDER BY sequence DESC, signed_at DESC LIMIT 1)
        LEFT JOIN {check} v ON v.id = (
            SELECT id FROM {check} WHERE organisation_id = h.organisation_id
            ORDER BY verified_at DESC, id DESC LIMIT 1)
        WHERE h.organisation_id = %s
    """  # table names come from the models; the one value is a parameter


def integrity_badge(*, organisation: Organisation) -> IntegrityBadge:
    """One query (the head joined to its newest checkpoint and verification; written as SQL
    because the ORM spends longer composing the subqueries than the database running them).
    Never runs a verification itself (that is a job's work). ``head_sequence`` moves with
    every audited write, so pages use it as the version of the organisation's data."""
    with connection.cursor() as cursor:
        cursor.execute(_badge_sql(), [organisation.pk])
        row = cursor.fetchone()
    if row is None:
        return IntegrityBadge(head_sequence=0, head_hash="", verified=False, verified_ok=False, verified_at=None,
                              verified_head=None, problem="", checkpoint_sequence=None, checkpoint_at=None)  # fmt: skip
    (sequence, head_hash, cp_sequence, cp_signed_at, cp_ts_status, cp_ts_error, cp_anchor_status, cp_anchor_error,
     verified_at, verified_head, ok, reason) = row  # fmt: skip
    verified = verified_at is not None
    return IntegrityBadge(
        head_sequence=sequence,
        head_hash=head_hash,
        verified=verified,
        verified_ok=verified and bool(ok),
        verified_at=_aware(verified_at),
        verified_head=verified_head,
        problem=reason or "",
        checkpoint_sequence=cp_sequence,
        checkpoint_at=_aware(cp_signed_at),
        checkpoint_timestamp_status=cp_ts_status or "",
        checkpoint_timestamp_error=cp_ts_error or "",
        checkpoint_anchor_status=cp_anchor_status or "",
        checkpoint_anchor_error=cp_anchor_error or "",
    )


# --- checkpoint cadence ----------------------------------------------------------


def _newest_signed_at() -> Subquery:
    return Subquery(
        AuditCheckpoint.objects.filter(organisation=OuterRef("organisation"))
        .order_by("-signed_at")
        .values("signed_at")[:1]
    )


def checkpoints_due(*, now: dt.datetime, organisation: Organisation | None = None) -> list[int]:
    """Organisations (ids) with unsigned events and either AUDIT_CHECKPOINT_EVERY_EVENTS of them,
    or no checkpoint younger than AUDIT_CHECKPOINT_EVERY_MINUTES. One query."""
    heads = AuditChainHead.objects.filter(sequence__gt=F("checkpoint_sequence")).annotate(
        last_signed=_newest_signed_at()
    )
    if organisation is not None:
        heads = heads.filter(organisation=organisation)
    heads = heads.filter(
        Q(sequence__gte=F("checkpoint_sequence") + settings.AUDIT_CHECKPOINT_EVERY_EVENTS)
        | Q(last_signed__isnull=True)
        | Q(last_signed__lte=now - dt.timedelta(minutes=settings.AUDIT_CHECKPOINT_EVERY_MINUTES))
    )
    return list(heads.order_by("organisation_id").values_list("organisation_id", flat=True))


def checkpoints_unfinished(*, now: dt.datetime) -> list[int]:
    """Checkpoints (ids) whose timestamp retry is due or that are not yet in the anchor directory.

    A checkpoint signed in the last minute is left to the signer that is still finishing it.
    """
    waiting = Q(anchor_status=AnchorStatus.NOT_ANCHORED, signed_at__lte=now - dt.timedelta(minutes=1))
    if settings.AUDIT_TSA_URL:
        waiting |= Q(timestamp_status=TimestampStatus.NOT_TIMESTAMPED, timestamp_retry_at__lte=now)
    return list(AuditCheckpoint.objects.filter(waiting).order_by("pk").values_list("pk", flat=True))


@dataclass(frozen=True)
class CheckpointFreshness:
    """One organisation's checkpoint lag, for monitoring (e.g. a /metrics endpoint)."""

    organisation: str
    head_sequence: int
    checkpoint_sequence: int
    unsigned_events: int
    last_signed_at: dt.datetime | None
    age_seconds: float | None
    not_timestamped: int
    not_anchored: int


def checkpoint_freshness(*, now: dt.datetime) -> list[CheckpointFreshness]:
    """Every organisation's unsigned tail, the age of its newest checkpoint, and how many of its
    checkpoints still wait for a timestamp or the anchor directory. One query."""
    rows = (
        AuditChainHead.objects.annotate(
            last_signed=Max("organisation__audit_checkpoints__signed_at"),
            waiting_stamp=Count(
                "organisation__audit_checkpoints",
                filter=Q(organisation__audit_checkpoints__timestamp_status=TimestampStatus.NOT_TIMESTAMPED),
            ),
            waiting_anchor=Count(
                "organisation__audit_checkpoints",
                filter=Q(organisation__audit_checkpoints__anchor_status=AnchorStatus.NOT_ANCHORED),
            ),
        )
        .order_by("organisation__slug")
        .values_list(
            "organisation__slug", "sequence", "checkpoint_sequence", "last_signed", "waiting_stamp", "waiting_anchor"
        )
    )
    return [
        CheckpointFreshness(
            organisation=slug,
            head_sequence=sequence,
            checkpoint_sequence=signed,
            unsigned_events=max(0, sequence - signed),
            last_signed_at=last,
            age_seconds=(now - last).total_seconds() if last else None,
            not_timestamped=stamps,
            not_anchored=anchors,
        )
        for slug, sequence, signed, last, stamps, anchors in rows
    ]
