"""The demo's reviews, held through the ordinary services so the trail reads like real use.

- *IT helpdesk assistant* (in production): a review this morning, closed, with all four
  roles signed on what is there now — delivery signed by Theo and co-signed by Dan, its
  business owner, who could not have signed alone — and one condition, met.
- *Support reply drafting* (nearly ready): a review an hour ago in which risk rejected
  and the others approved; afterwards Sam, who owns GV-03, added evidence to it, so every
  signature is stale and the pilot needs re-review. The next review is in a week, and a
  comment thread on GV-03 mentions Sam.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.organisations.models import Organisation
from assessments.pilots.models import Pilot, Response
from assessments.pilots.services import evidence_add
from assessments.reviews.models import SIGNING_ROLES, ReviewMeeting
from assessments.reviews.services import (
    comment_add,
    condition_meet,
    condition_raise,
    decision_record,
    meeting_close,
    meeting_schedule,
    meeting_start,
    meeting_update,
)

# Who signs for each role when they are not an owner of the pilot under review.
SIGNERS = {"delivery": ("theo", "dan"), "security": ("sam",), "risk": ("rita",), "product": ("nora", "priya")}


def _at(today: dt.date, hour: int) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(today, dt.time(hour, 0)))


def _response(pilot: Pilot, code: str) -> Response:
    return Response.objects.select_related("assessment__pilot", "criterion").get(
        assessment__pilot=pilot, assessment__status__in=["draft", "in_review"], criterion__code=code
    )


def _meeting(pilot: Pilot, people: dict[str, User], when: dt.datetime, where: str) -> ReviewMeeting:
    organiser = Actor.for_user(pilot.technical_owner) if pilot.technical_owner else Actor.system("demo.seed")
    participants = [(people[names[0]], role) for role, names in SIGNERS.items()]
    participants += [(u, "owner") for u in (pilot.technical_owner, pilot.business_owner) if u is not None]
    owners = {u.pk for u in (pilot.technical_owner, pilot.business_owner) if u is not None}
    participants = [(u, role) for u, role in participants if role == "owner" or u.pk not in owners]
    return meeting_schedule(
        pilot=pilot, actor=organiser, scheduled_at=when, duration_minutes=45, location=where, participants=participants
    )


def _signer(role: str, pilot: Pilot, people: dict[str, User]) -> User:
    owners = {pilot.technical_owner_id, pilot.business_owner_id}
    return next(people[name] for name in SIGNERS[role] if people[name].pk not in owners)


def demo_reviews(*, organisation: Organisation, people: dict[str, User], today: dt.date) -> None:
    pilots = {p.name: p for p in Pilot.objects.filter(organisation=organisation).select_related(
        "technical_owner", "business_owner")}  # fmt: skip
    helpdesk, support = pilots.get("IT helpdesk assistant"), pilots.get("Support reply drafting")
    if helpdesk is not None:
        _helpdesk(helpdesk, people, today)
    if support is not None:
        _support(support, people, today)


def _helpdesk(pilot: Pilot, people: dict[str, User], today: dt.date) -> None:
    owner = Actor.for_user(pilot.technical_owner) if pilot.technical_owner else Actor.system("demo.seed")
    meeting = _meeting(pilot, people, _at(today, 9), "Video call")
    meeting_start(meeting=meeting, actor=owner)
    response = _response(pilot, "OW-03") if Response.objects.filter(
        assessment__pilot=pilot, criterion__code="OW-03").exists() else Response.objects.filter(
        assessment__pilot=pilot).select_related("assessment__pilot", "criterion").first()  # fmt: skip
    assert response is not None
    sam = Actor.for_user(people["sam"])
    condition = condition_raise(
        response=response, actor=sam, role="security", owner=pilot.technical_owner or people["sam"],
        text="Rotate the service-desk API token and record the rotation in the runbook.",
        due_date=today + dt.timedelta(days=14), meeting=meeting,
    )  # fmt: skip
    for role in SIGNING_ROLES:
        signer = _signer(role, pilot, people)
        decision_record(
            meeting=meeting,
            actor=Actor.for_user(signer),
            role=role,
            decision="approve_with_conditions" if role == "security" else "approve",
            comment={
                "delivery": "Runbook walked through; on-call rota has three people.",
                "security": "Fine once the API token is rotated (condition raised).",
                "risk": "Minimal-risk use; no personal data leaves the boundary.",
                "product": "Deflection rate is above target for six weeks running.",
            }[role],
        )
    # Dan owns the pilot (business owner): he may co-sign delivery only after Theo signed it.
    decision_record(meeting=meeting, actor=Actor.for_user(people["dan"]), role="delivery", decision="approve")
    condition_meet(condition=condition, actor=owner, note="Token rotated; runbook updated.")
    meeting_update(
        meeting=meeting,
        actor=owner,
        minutes=(
            "## Decisions\n\n- All four roles approved; security with one condition (token rotation), "
            "since met.\n- Stays in production.\n\n## Actions\n\n- Refresh the stale uptime evidence "
            "before the next quarterly review."
        ),
    )
    meeting_close(meeting=meeting, actor=owner)


def _support(pilot: Pilot, people: dict[str, User], today: dt.date) -> None:
    owner = Actor.for_user(pilot.technical_owner) if pilot.technical_owner else Actor.system("demo.seed")
    meeting = _meeting(pilot, people, _at(today, 10), "Room 4.12")
    meeting_start(meeting=meeting, actor=owner)
    gv03 = _response(pilot, "GV-03")
    comment = comment_add(
        response=gv03,
        actor=Actor.for_user(people["rita"]),
        body="@sam the retention policy still allows 90 days of transcripts; can we get it to 30 before launch?",
        meeting=meeting,
    )
    comment_add(
        response=gv03,
        actor=Actor.for_user(people["sam"]),
        body="Agreed. The redaction job is ready; the policy change needs legal sign-off.",
        parent=comment,
        meeting=meeting,
    )
    for role in SIGNING_ROLES:
        rejecting = role == "risk"
        decision_record(
            meeting=meeting,
            actor=Actor.for_user(_signer(role, pilot, people)),
            role=role,
            decision="reject" if rejecting else "approve",
            must_change="GV-03 must be fully met: transcript retention cut to 30 days, with legal sign-off."
            if rejecting
            else "",
        )
    meeting_close(meeting=meeting, actor=owner)
    # After the meeting Sam, who owns GV-03, attaches the new retention policy draft: what was
    # signed has changed, so every signature is stale and the pilot needs re-review.
    gv03.refresh_from_db()
    evidence_add(
        response=gv03,
        actor=Actor.for_user(gv03.owner or people["sam"]),
        kind="link",
        title="Retention policy v2 (draft, 30 days)",
        url="https://wiki.northwind.example/policies/support-transcript-retention-v2",
        effective_date=today,
    )
    _meeting(pilot, people, _at(today + dt.timedelta(days=7), 10), "Room 4.12")
