"""Reads for reviews: the readiness gate, signatures per role, agendas, threads, meetings.

The gate fails closed. A pilot is ready for production only when every applicable
blocking criterion is met with current evidence (the scorecard), no automated check is
failing, each of delivery, security, risk and product has signed the current fingerprint
with approve or approve-with-conditions (and not only by the pilot's own owners), and no
condition is overdue. Every reason it gives links to where it can be fixed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from assessments.evidence.selectors import check_outcomes
from assessments.frameworks.scoring import STALE, Scorecard
from assessments.organisations.models import Role
from assessments.pilots.models import Assessment, Pilot, Response
from assessments.pilots.selectors import ChecklistRow
from assessments.reviews.fingerprint import DiffLine, fingerprint_of, snapshot_diff, snapshots
from assessments.reviews.models import (
    APPROVING,
    OPEN_MEETING_STATUSES,
    SIGNING_ROLES,
    Comment,
    Condition,
    ConditionStatus,
    Decision,
    DecisionKind,
    GateOverride,
    MeetingStatus,
    ReviewMeeting,
)


def person(user: User | None) -> str:
    if user is None:
        return "nobody"
    return user.get_full_name() or user.get_username()


@dataclass(frozen=True)
class GateReason:
    """Why a pilot is not ready, and where that is fixed."""

    text: str
    url: str
    kind: str  # "criterion", "check", "signature", "condition", "assessment"


@dataclass(frozen=True)
class RoleSignoff:
    """Where one role stands: its latest decision (from the latest meeting it signed in)."""

    role: str
    decision: str | None = None
    signers: tuple[str, ...] = ()
    signed_at: dt.datetime | None = None
    meeting_id: int | None = None
    comment: str = ""
    must_change: str = ""
    stale: bool = False
    only_owners: bool = False
    snapshot: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return Role(self.role).label

    @property
    def decision_label(self) -> str:
        return DecisionKind(self.decision).label if self.decision else "Not signed"

    @property
    def counts(self) -> bool:
        return self.decision in APPROVING and not self.stale and not self.only_owners


@dataclass(frozen=True)
class Gate:
    """The readiness verdict for production, with the reasons and the four roles' state."""

    ready: bool
    reasons: list[GateReason]
    roles: list[RoleSignoff]
    fingerprint: str
    overdue: list[Condition] = field(default_factory=list)
    open_conditions: int = 0
    diff: list[DiffLine] = field(default_factory=list)
    next_meeting: ReviewMeeting | None = None

    @property
    def needs_rereview(self) -> bool:
        """Somebody signed, and what they signed has changed since."""
        return any(r.stale for r in self.roles)

    @property
    def stale_since(self) -> dt.datetime | None:
        stale = [r.signed_at for r in self.roles if r.stale and r.signed_at]
        return max(stale) if stale else None

    @property
    def reason_texts(self) -> list[str]:
        return [r.text for r in self.reasons]


def _owners(pilot: Pilot) -> set[int]:
    return {pk for pk in (pilot.technical_owner_id, pilot.business_owner_id) if pk is not None}


def _role_signoffs(
    decisions: Sequence[Decision], *, current: str | None, owners: set[int], fallback: dict[str, Any] | None = None
) -> list[RoleSignoff]:
    """Per role, the decisions of the latest meeting in which that role signed.

    Several people may sign one role in one meeting (an owner only as a co-signer);
    any rejection among them rejects, and every signature must be of the current
    fingerprint for the role to count. ``current`` None means "not computed" (no role
    has signed, so nothing can be stale).
    """
    latest: dict[str, list[Decision]] = {}
    for decision in sorted(decisions, key=lambda d: d.signed_at):
        bucket = latest.get(decision.role)
        if bucket and bucket[0].meeting_id != decision.meeting_id:
            bucket = None
        latest[decision.role] = [*(bucket or []), decision]
    out = []
    for role in SIGNING_ROLES:
        group = latest.get(role)
        if not group:
            out.append(RoleSignoff(role=role))
            continue
        kinds = {d.decision for d in group}
        kind = (
            DecisionKind.REJECT
            if DecisionKind.REJECT in kinds
            else DecisionKind.APPROVE_WITH_CONDITIONS
            if DecisionKind.APPROVE_WITH_CONDITIONS in kinds
            else DecisionKind.APPROVE
        )
        stale_one = next((d for d in group if d.fingerprint != current), None)
        out.append(
            RoleSignoff(
                role=role,
                decision=kind,
                signers=tuple(person(d.signer) for d in group),
                signed_at=group[-1].signed_at,
                meeting_id=group[-1].meeting_id,
                comment="\n".join(d.comment for d in group if d.comment),
                must_change="\n".join(d.must_change for d in group if d.must_change),
                stale=stale_one is not None,
                only_owners=all(d.signer_id in owners for d in group),
                snapshot=stale_one.snapshot if stale_one is not None else fallback,
            )
        )
    return out


def decisions_of(*, assessment_ids: Sequence[int]) -> QuerySet[Decision]:
    return (
        Decision.objects.filter(meeting__assessment_id__in=assessment_ids)
        .exclude(meeting__status=MeetingStatus.CANCELLED)
        .select_related("signer", "meeting")
        .order_by("signed_at", "pk")
    )


def conditions_overdue(*, pilot_ids: Sequence[int], today: dt.date) -> QuerySet[Condition]:
    return Condition.objects.filter(pilot_id__in=pilot_ids, status=ConditionStatus.OPEN, due_date__lt=today)


def _review_url(pilot_id: int, meeting_id: int | None) -> str:
    if meeting_id is not None:
        return reverse("meeting", args=[meeting_id]) + "#decisions"
    return reverse("pilot-reviews", args=[pilot_id]) + "#schedule"


def _signature_reasons(pilot: Pilot, roles: list[RoleSignoff], open_meeting: int | None) -> list[GateReason]:
    reasons = []
    for r in roles:
        where = _review_url(pilot.pk, r.meeting_id or open_meeting)
        if r.decision is None:
            reasons.append(GateReason(f"{r.label} has not signed", _review_url(pilot.pk, open_meeting), "signature"))
        elif r.stale:
            when = timezone.localtime(r.signed_at).strftime("%-d %b %Y") if r.signed_at else ""
            reasons.append(
                GateReason(
                    f"{r.label} signed on {when}, but the assessment has changed since: needs re-review",
                    reverse("pilot-reviews", args=[pilot.pk]) + "#changes",
                    "signature",
                )
            )
        elif r.decision == DecisionKind.REJECT:
            reasons.append(GateReason(f"{r.label} rejected: {r.must_change}", where, "signature"))
        elif r.only_owners:
            reasons.append(GateReason(f"{r.label} was signed only by the pilot's own owners", where, "signature"))
    return reasons


def readiness_gate(
    *,
    assessment: Assessment,
    card: Scorecard,
    rows: Sequence[ChecklistRow] | None = None,
    today: dt.date | None = None,
) -> Gate:
    """The gate for one assessment whose scorecard the caller has (the pilot page, a stage change)."""
    today = today or timezone.localdate()
    pilot = assessment.pilot
    response_of = (
        {r.criterion_row.code: r.response.pk for r in rows}
        if rows is not None
        else dict(Response.objects.filter(assessment=assessment).values_list("criterion__code", "pk"))
    )
    reasons: list[GateReason] = []
    if not card.blockers and card.reasons:
        reasons.append(GateReason(card.reasons[0], reverse("pilot", args=[pilot.pk]) + "#checklist", "assessment"))
    for blocker in card.blockers:
        url = reverse("response-row", args=[response_of[blocker.code]]) if blocker.code in response_of else ""
        reasons.append(GateReason(f"{blocker.code} {blocker.title}: {blocker.reason}", url, "criterion"))
    blocking = {b.code for b in card.blockers}
    if rows is not None:
        failing = [(r.criterion_row.code, c) for r in rows for c in r.checks]
    else:
        code_of = dict(Response.objects.filter(assessment=assessment).values_list("criterion_id", "criterion__code"))
        failing = [
            (code_of.get(criterion_id, ""), c)
            for (_pilot, criterion_id), found in check_outcomes(pilot_ids=[pilot.pk]).items()
            for c in found
        ]
    for code, outcome in failing:
        if outcome.failure and code not in blocking:  # a blocking criterion's failure the scorecard names
            url = reverse("linked-systems", args=[pilot.pk])
            reasons.append(GateReason(f"{code} {outcome.failure}".strip(), url, "check"))
    decisions = list(decisions_of(assessment_ids=[assessment.pk]))
    current = ""
    now_snapshot: dict[str, Any] | None = None
    if decisions:
        now_snapshot = snapshots(assessment_ids=[assessment.pk])[assessment.pk]
        current = fingerprint_of(now_snapshot)
    roles = _role_signoffs(decisions, current=current, owners=_owners(pilot))
    next_meeting = (
        ReviewMeeting.objects.filter(pilot=pilot, status__in=OPEN_MEETING_STATUSES).order_by("scheduled_at").first()
    )
    open_meeting = next_meeting.pk if next_meeting and next_meeting.assessment_id == assessment.pk else None
    reasons += _signature_reasons(pilot, roles, open_meeting)
    conditions = list(Condition.objects.filter(pilot=pilot, status=ConditionStatus.OPEN).select_related("owner"))
    overdue = [c for c in conditions if c.due_date < today]
    for condition in overdue:
        reasons.append(
            GateReason(
                f"Condition overdue since {condition.due_date:%-d %b %Y} ({person(condition.owner)}): {condition.text}",
                reverse("pilot-reviews", args=[pilot.pk]) + f"#condition-{condition.pk}",
                "condition",
            )
        )
    stale_role = next((r for r in roles if r.stale and r.snapshot), None)
    diff = (
        snapshot_diff(stale_role.snapshot, now_snapshot) if stale_role and stale_role.snapshot and now_snapshot else []
    )
    return Gate(
        ready=not reasons,
        reasons=reasons,
        roles=roles,
        fingerprint=current or (fingerprint_of(now_snapshot) if now_snapshot else ""),
        overdue=overdue,
        open_conditions=len(conditions),
        diff=diff,
        next_meeting=next_meeting,
    )


@dataclass(frozen=True)
class GateSummary:
    """The gate as the portfolio shows it: a verdict, and whether a sign-off went stale."""

    ready: bool
    needs_rereview: bool
    signed_roles: int
    overdue_conditions: int


def portfolio_gates(
    *, pilots: Sequence[tuple[int, int, bool]], owners: dict[int, set[int]], today: dt.date
) -> dict[int, GateSummary]:
    """Per pilot id, from (pilot id, open assessment id, criteria ready per the cached score).

    A fixed number of queries: decisions, overdue conditions, checks, and the snapshots
    of only those assessments somebody has signed.
    """
    assessment_ids = [aid for _pid, aid, _ready in pilots if aid]
    decisions: dict[int, list[Decision]] = defaultdict(list)
    for decision in decisions_of(assessment_ids=assessment_ids):
        decisions[decision.meeting.assessment_id].append(decision)
    overdue: dict[int, int] = defaultdict(int)
    for pilot_id in conditions_overdue(pilot_ids=[p for p, _a, _r in pilots], today=today).values_list(
        "pilot_id", flat=True
    ):
        overdue[pilot_id] += 1
    failing = {
        pilot_id
        for (pilot_id, _criterion), found in check_outcomes(assessment_ids=assessment_ids).items()
        if any(o.failure for o in found)
    }
    snaps = snapshots(assessment_ids=list(decisions))
    out = {}
    for pilot_id, aid, criteria_ready in pilots:
        current = fingerprint_of(snaps[aid]) if aid in snaps else None
        roles = _role_signoffs(decisions.get(aid, []), current=current, owners=owners.get(pilot_id, set()))
        signed = sum(1 for r in roles if r.counts)
        out[pilot_id] = GateSummary(
            ready=bool(criteria_ready and aid and signed == len(SIGNING_ROLES))
            and not overdue[pilot_id]
            and pilot_id not in failing,
            needs_rereview=any(r.stale for r in roles),
            signed_roles=signed,
            overdue_conditions=overdue[pilot_id],
        )
    return out


# --- meetings, agendas, threads ---------------------------------------------------------


def meetings_of(*, pilot: Pilot) -> QuerySet[ReviewMeeting]:
    return ReviewMeeting.objects.filter(pilot=pilot).select_related("organiser").prefetch_related("participants__user")


def meeting_next(*, pilot: Pilot) -> ReviewMeeting | None:
    return ReviewMeeting.objects.filter(pilot=pilot, status__in=OPEN_MEETING_STATUSES).order_by("scheduled_at").first()


AGENDA_GROUPS = {
    "blocking": "Blocking, not met",
    "check": "Failing check",
    "stale": "Stale evidence",
    "major": "Major",
}


@dataclass(frozen=True)
class AgendaItem:
    row: ChecklistRow
    group: str

    @property
    def group_label(self) -> str:
        return AGENDA_GROUPS[self.group]


def agenda(rows: Sequence[ChecklistRow]) -> list[AgendaItem]:
    """The meeting's order: applicable blocking criteria not met, then failing checks, then
    stale evidence, then the remaining applicable major criteria. Within a group the
    checklist's order (gap, then criterion)."""
    items: list[AgendaItem] = []
    seen: set[int] = set()

    def take(group: str, wanted: Sequence[ChecklistRow]) -> None:
        for row in wanted:
            if row.response.pk not in seen:
                seen.add(row.response.pk)
                items.append(AgendaItem(row, group))

    counted = [r for r in rows if r.criterion_row.counted]
    take("blocking", [r for r in counted if r.criterion_row.severity == "blocking" and r.blocker_reason])
    take("check", [r for r in counted if r.checks_failing])
    take("stale", [r for r in counted if STALE in r.freshness])
    take("major", [r for r in counted if r.criterion_row.severity == "major"])
    return items


@dataclass(frozen=True)
class Thread:
    first: Comment
    replies: list[Comment]


def threads_of(*, response_ids: Sequence[int]) -> dict[int, list[Thread]]:
    """Comments per response, as threads (oldest first), in two queries."""
    comments = list(
        Comment.objects.filter(response_id__in=response_ids).select_related("author").order_by("created_at", "pk")
    )
    replies: dict[int, list[Comment]] = defaultdict(list)
    for comment in comments:
        if comment.parent_id is not None:
            replies[comment.parent_id].append(comment)
    threads: dict[int, list[Thread]] = defaultdict(list)
    for comment in comments:
        if comment.parent_id is None:
            threads[comment.response_id].append(Thread(comment, replies.get(comment.pk, [])))
    return threads


def comments_recent(*, pilot: Pilot, limit: int = 5) -> list[Comment]:
    return list(
        Comment.objects.filter(pilot=pilot)
        .select_related("author", "response__criterion")
        .order_by("-created_at", "-pk")[:limit]
    )


def conditions_of(*, pilot: Pilot) -> QuerySet[Condition]:
    return (
        Condition.objects.filter(pilot=pilot)
        .select_related("owner", "raised_by", "resolved_by", "response__criterion")
        .order_by("status", "due_date", "pk")
    )


def overrides_of(*, pilot: Pilot) -> QuerySet[GateOverride]:
    return GateOverride.objects.filter(pilot=pilot).select_related("actor")
