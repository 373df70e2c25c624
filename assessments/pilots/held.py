"""Evidence Preflight itself holds, for the criteria that name it.

Where the product is the evidence, a criterion counts it without an upload:

- ``review_signoff``: every signing role (delivery, security, risk, product) approved the
  assessment in a review meeting that was not cancelled, and not only through the pilot's own
  owners (as the readiness gate reads it); the latest such sign-off dates it.
  A rejection in a role's latest meeting means the evidence is not held.
- ``sow_definition``: a statement-of-work readiness definition was generated for the
  pilot (a finished Markdown, Word or PDF export); the newest dates it.
- ``audit_trail``: the organisation's hash-chained audit trail has a signed checkpoint;
  the newest dates it.

The item counts like a passing automated check: current evidence from its date, within
the criterion's maximum age, and an unanswered criterion counts as met while it holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from assessments.frameworks.models import HeldEvidence


@dataclass(frozen=True)
class HeldItem:
    kind: str
    summary: str  # "joint review signed by all four roles on 3 Dec 2026"
    on: dt.date


@dataclass
class _RoleGroup:
    """One role's decisions in one meeting, as far as held evidence reads them."""

    meeting_id: int
    approved: bool = True
    only_owners: bool = True
    signed_at: dt.datetime | None = None


def _day(moment: dt.datetime) -> dt.date:
    return timezone.localtime(moment).date()


def held_evidence(*, assessments: Sequence[tuple[int, int, int]], kinds: set[str]) -> dict[tuple[int, str], HeldItem]:
    """``assessments`` as (assessment id, pilot id, organisation id); only ``kinds`` are read
    (one query each), so a framework that names none costs nothing."""
    from assessments.audit.models import AuditCheckpoint
    from assessments.reports.models import SOW_KINDS, Report, ReportStatus
    from assessments.reviews.models import APPROVING, SIGNING_ROLES, Decision, MeetingStatus

    held: dict[tuple[int, str], HeldItem] = {}
    if not assessments or not kinds:
        return held
    if HeldEvidence.REVIEW_SIGNOFF in kinds:
        # Read as the readiness gate reads it: per role, the decisions of the latest meeting in
        # which the role signed; any rejection among them rejects, and a role signed only by the
        # pilot's own owners does not count (no one approves their own work alone).
        latest: dict[tuple[int, str], _RoleGroup] = {}
        for aid, meeting_id, role, decision, signed_at, signer, *owners in (
            Decision.objects.filter(meeting__assessment_id__in=[a for a, _, _ in assessments])
            .exclude(meeting__status=MeetingStatus.CANCELLED)
            .order_by("signed_at", "pk")
            .values_list(
                "meeting__assessment_id",
                "meeting_id",
                "role",
                "decision",
                "signed_at",
                "signer_id",
                "meeting__assessment__pilot__technical_owner_id",
                "meeting__assessment__pilot__business_owner_id",
            )
        ):
            group = latest.get((aid, role))
            if group is None or group.meeting_id != meeting_id:
                group = latest[(aid, role)] = _RoleGroup(meeting_id)
            group.approved = group.approved and decision in APPROVING
            group.only_owners = group.only_owners and signer in owners
            group.signed_at = signed_at
        for aid, _pilot, _org in assessments:
            groups = [latest.get((aid, role)) for role in SIGNING_ROLES]
            counted = [g for g in groups if g is not None and g.approved and not g.only_owners]
            if len(counted) == len(SIGNING_ROLES):
                when = max(g.signed_at for g in counted if g.signed_at is not None)
                held[(aid, HeldEvidence.REVIEW_SIGNOFF)] = HeldItem(
                    HeldEvidence.REVIEW_SIGNOFF,
                    f"joint review approved by delivery, security, risk and product on {_day(when):%-d %b %Y}",
                    _day(when),
                )
    if HeldEvidence.SOW_DEFINITION in kinds:
        # A report counts for its pilot only when it belongs to the pilot's own organisation.
        org_of = {p: o for _, p, o in assessments}
        newest: dict[int, dt.datetime] = {}
        for pilot_id, org_id, finished_at in Report.objects.filter(
            pilot_id__in=org_of,
            organisation_id__in=set(org_of.values()),
            kind__in=SOW_KINDS,
            status=ReportStatus.DONE,
        ).values_list("pilot_id", "organisation_id", "finished_at"):
            if org_id != org_of[pilot_id]:
                continue
            if finished_at and (pilot_id not in newest or finished_at > newest[pilot_id]):
                newest[pilot_id] = finished_at
        for aid, pilot_id, _org in assessments:
            if pilot_id in newest:
                day = _day(newest[pilot_id])
                held[(aid, HeldEvidence.SOW_DEFINITION)] = HeldItem(
                    HeldEvidence.SOW_DEFINITION,
                    f"statement-of-work readiness definition generated {day:%-d %b %Y}",
                    day,
                )
    if HeldEvidence.AUDIT_TRAIL in kinds:
        # Only each organisation's newest checkpoint (an organisation signs one every few
        # minutes, so reading them all would grow without bound on every pilot page).
        latest_checkpoint = (
            AuditCheckpoint.objects.filter(organisation_id=OuterRef("organisation_id"))
            .order_by("-sequence")
            .values("pk")[:1]
        )
        signed: dict[int, tuple[int, dt.datetime]] = {
            org_id: (sequence, signed_at)
            for org_id, sequence, signed_at in AuditCheckpoint.objects.filter(
                organisation_id__in={o for _, _, o in assessments}, pk=Subquery(latest_checkpoint)
            ).values_list("organisation_id", "sequence", "signed_at")
        }
        for aid, _pilot, org_id in assessments:
            if org_id in signed:
                sequence, signed_at = signed[org_id]
                day = _day(signed_at)
                held[(aid, HeldEvidence.AUDIT_TRAIL)] = HeldItem(
                    HeldEvidence.AUDIT_TRAIL,
                    f"hash-chained audit trail, signed checkpoint at event {sequence} on {day:%-d %b %Y}",
                    day,
                )
    return held
