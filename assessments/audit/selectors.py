"""Reads of the audit trail for people: a pilot's activity feed and the integrity badge."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from assessments.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent, AuditVerification
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


def _value(value: Any) -> str:
    if value in (None, ""):
        return "nothing"
    text = str(value).replace("_", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _sentence(event: AuditEvent) -> str:
    changes: dict[str, Any] = event.changes or {}
    who = event.actor_label
    code = ""
    if isinstance(changes.get("criterion"), list):
        code = next((c for c in changes["criterion"] if c), "")
    verb, _, _ = event.action.partition(".")
    if event.action == "response.updated":
        parts = [
            f"{FIELD_LABELS.get(name, name)} from {_value(pair[0])} to {_value(pair[1])}"
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
        fields = ", ".join(f"{n.replace('_', ' ')} to {_value(p[1])}" for n, p in changes.items())
        return f"{who} set {fields}" if fields else f"{who} saved the profile unchanged"
    if event.action.startswith("stop_condition."):
        return f"{who} {event.action.split('.')[1]} a stop condition"
    return f"{who}: {event.action.replace('.', ' ').replace('_', ' ')} ({verb})"


def activity_for_pilot(*, pilot_id: int, limit: int = 50) -> list[ActivityRow]:
    """Newest first: who did what to this pilot, in one query."""
    events = AuditEvent.objects.filter(pilot_id=pilot_id).order_by("-sequence")[:limit]
    return [
        ActivityRow(
            sequence=e.sequence,
            occurred_at=e.occurred_at,
            actor=e.actor_label,
            action=e.action,
            sentence=_sentence(e),
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

    @property
    def unverified_events(self) -> int:
        return self.head_sequence - (self.verified_head or 0)


def integrity_badge(*, organisation: Organisation) -> IntegrityBadge:
    """Three small queries; never runs a verification itself (that is a job's work)."""
    head = AuditChainHead.objects.filter(organisation=organisation).first()
    checkpoint = AuditCheckpoint.objects.filter(organisation=organisation).order_by("-sequence", "-signed_at").first()
    check = AuditVerification.objects.filter(organisation=organisation).order_by("-verified_at").first()
    return IntegrityBadge(
        head_sequence=head.sequence if head else 0,
        head_hash=head.hash if head else "",
        verified=check is not None,
        verified_ok=bool(check and check.ok),
        verified_at=check.verified_at if check else None,
        verified_head=check.head_sequence if check else None,
        problem=check.reason if check else "",
        checkpoint_sequence=checkpoint.sequence if checkpoint else None,
        checkpoint_at=checkpoint.signed_at if checkpoint else None,
    )
