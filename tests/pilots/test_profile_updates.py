"""Changing a pilot's profile and its stop conditions: only what changed is saved and audited,
a save that changes nothing records nothing, and scores move only when the risk tier does."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from assessments.audit.models import AuditEvent
from assessments.pilots.models import AssessmentScore, Pilot, StopCondition
from assessments.pilots.selectors import assessment_open, scorecard
from assessments.pilots.services import pilot_create, pilot_update, stop_condition_add, stop_condition_update


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage",
        description="Sorts incoming claims.",
        technical_owner=users["owner"],
        risk_tier="limited",
    )


@pytest.fixture
def stop(pilot, owner_actor) -> StopCondition:
    return stop_condition_add(
        pilot=pilot, actor=owner_actor, condition="Pause on drift", metric="accuracy", comparator="lt",
        threshold=Decimal("0.9"),
    )  # fmt: skip


def _events() -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("sequence"))


def test_a_profile_change_saves_and_audits_only_the_fields_that_changed(pilot, owner_actor, users):
    long_ago = timezone.now() - dt.timedelta(days=3)
    Pilot.objects.filter(pk=pilot.pk).update(updated_at=long_ago)
    before = _events()

    pilot_update(
        pilot=pilot, actor=owner_actor, name="Claims triage", description="Sorts and routes incoming claims.",
        stage="paused", technical_owner=users["owner"],
    )  # fmt: skip

    added = _events()[len(before) :]
    assert [e.action for e in added] == ["pilot.updated"]
    assert sorted(added[0].changes) == ["description", "stage"]
    assert added[0].changes["stage"] == ["pilot", "paused"]
    saved = Pilot.objects.get(pk=pilot.pk)
    assert (saved.stage, saved.description) == ("paused", "Sorts and routes incoming claims.")
    assert saved.updated_at > long_ago  # the timestamp moves even though only changed columns are saved


def test_a_profile_save_that_changes_nothing_records_nothing(pilot, owner_actor, users):
    long_ago = timezone.now() - dt.timedelta(days=3)
    Pilot.objects.filter(pk=pilot.pk).update(updated_at=long_ago)
    pilot.refresh_from_db()
    events = AuditEvent.objects.count()

    pilot_update(pilot=pilot, actor=owner_actor, name="Claims triage", stage="pilot", technical_owner=users["owner"])

    assert AuditEvent.objects.count() == events
    assert Pilot.objects.get(pk=pilot.pk).updated_at == long_ago


def test_scores_are_recomputed_when_the_risk_tier_changes_and_only_then(pilot, owner_actor):
    assessment = assessment_open(pilot=pilot)
    AssessmentScore.objects.filter(assessment=assessment).delete()

    pilot_update(pilot=pilot, actor=owner_actor, description="Reworded.")
    assert not AssessmentScore.objects.filter(assessment=assessment).exists()

    pilot_update(pilot=pilot, actor=owner_actor, risk_tier="high")
    cached = AssessmentScore.objects.get(assessment=assessment)
    card = scorecard(assessment=assessment, today=timezone.localdate())
    assert (cached.overall, cached.blockers) == (card.overall, len(card.blockers))


def test_a_refused_profile_change_saves_and_records_nothing(pilot, owner_actor):
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        pilot_update(pilot=pilot, actor=owner_actor, stage="launched")
    assert Pilot.objects.get(pk=pilot.pk).stage == "pilot"
    assert AuditEvent.objects.count() == events


def test_a_field_outside_the_profile_is_a_programming_error_not_a_silent_drop(pilot, owner_actor):
    events = AuditEvent.objects.count()
    with pytest.raises(TypeError, match="slug"):
        pilot_update(pilot=pilot, actor=owner_actor, **{"slug": "elsewhere"})
    assert Pilot.objects.get(pk=pilot.pk).slug == pilot.slug
    assert AuditEvent.objects.count() == events


def test_a_stop_condition_change_is_audited_with_what_changed(stop, owner_actor):
    before = AuditEvent.objects.count()
    stop_condition_update(stop=stop, actor=owner_actor, status="triggered", metric="accuracy")
    event = AuditEvent.objects.latest("sequence")
    assert AuditEvent.objects.count() == before + 1
    # Triggering pauses the pilot in the same change, so the one event says so too.
    assert (event.action, sorted(event.changes)) == ("stop_condition.updated", ["pilot_stage", "status"])
    assert event.changes["pilot_stage"] == ["pilot", "paused"]
    assert StopCondition.objects.get(pk=stop.pk).status == "triggered"


def test_a_stop_condition_save_that_changes_nothing_records_nothing(stop, owner_actor):
    before = AuditEvent.objects.count()
    stop_condition_update(stop=stop, actor=owner_actor, status="armed", threshold=Decimal("0.9000"))
    assert AuditEvent.objects.count() == before


def test_a_stop_condition_field_that_does_not_exist_is_a_programming_error(stop, owner_actor):
    with pytest.raises(TypeError, match="pilot"):
        stop_condition_update(stop=stop, actor=owner_actor, **{"pilot": None})
