"""A pilot whose blocking criteria can be met in one call, a meeting, and the four signers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.pilots.models import Response
from assessments.pilots.services import evidence_add, pilot_create, response_update
from assessments.reviews.models import SIGNING_ROLES
from assessments.reviews.services import decision_record, meeting_schedule


@pytest.fixture
def pilot(framework, users, owner_actor):
    return pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage",
        risk_tier="limited",
        technical_owner=users["owner"],
    )


def blocking_responses(pilot) -> list[Response]:
    rows = Response.objects.filter(assessment__pilot=pilot).select_related("criterion", "assessment__pilot")
    return [r for r in rows if r.criterion.severity_for(pilot.risk_tier) == "blocking"]


def meet_blockers(pilot, actor: Actor) -> None:
    """Every applicable blocking criterion met, each with a fresh link."""
    for response in blocking_responses(pilot):
        response_update(response=response, actor=actor, expected_version=response.version, status="met")
        evidence_add(
            response=response,
            actor=actor,
            kind="link",
            title=f"Proof for {response.criterion.code}",
            url="https://ci.example.com/run",
            effective_date=timezone.localdate() - dt.timedelta(days=1),
        )


@pytest.fixture
def ready_criteria(pilot, owner_actor):
    meet_blockers(pilot, owner_actor)
    return pilot


@pytest.fixture
def meeting(pilot, users, owner_actor):
    return meeting_schedule(
        pilot=pilot,
        actor=owner_actor,
        scheduled_at=timezone.now() + dt.timedelta(days=1),
        participants=[(users[role], role) for role in SIGNING_ROLES] + [(users["owner"], "owner")],
        location="Room 4.12",
    )


def sign_all(meeting, users, decision: str = "approve") -> None:
    for role in SIGNING_ROLES:
        decision_record(meeting=meeting, actor=Actor.for_user(users[role]), role=role, decision=decision)
