"""The readiness gate: its truth table, stale signatures with their diff, and the stage gate."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.pilots.models import Pilot, Response
from assessments.pilots.selectors import assessment_open, scorecard
from assessments.pilots.services import pilot_update, response_update, stop_condition_add, stop_condition_update
from assessments.reviews.models import SIGNING_ROLES, GateOverride
from assessments.reviews.selectors import Gate, readiness_gate
from assessments.reviews.services import condition_raise, decision_record
from tests.reviews.conftest import blocking_responses, meet_blockers, sign_all


def gate_of(pilot: Pilot) -> Gate:
    assessment = assessment_open(pilot=pilot)
    assert assessment is not None
    return readiness_gate(assessment=assessment, card=scorecard(assessment=assessment, today=timezone.localdate()))


def test_a_pilot_with_met_criteria_and_four_signatures_is_ready(ready_criteria, meeting, users):
    sign_all(meeting, users)
    gate = gate_of(ready_criteria)
    assert gate.ready, gate.reason_texts
    assert [r.role for r in gate.roles if r.counts] == list(SIGNING_ROLES)


@pytest.mark.parametrize(
    ("criteria_met", "signed", "decision", "overdue", "changed_after"),
    list(itertools.product([True, False], [4, 3], ["approve", "approve_with_conditions", "reject"],
                           [False, True], [False, True])),
)  # fmt: skip
def test_the_gate_truth_table(
    pilot, meeting, users, owner_actor, criteria_met, signed, decision, overdue, changed_after
):
    """Ready exactly when criteria are met, all four roles approved (with or without conditions)
    what is there now, and no condition is overdue; every other row lists why."""
    if criteria_met:
        meet_blockers(pilot, owner_actor)
    for role in SIGNING_ROLES[:signed]:
        decision_record(
            meeting=meeting,
            actor=Actor.for_user(users[role]),
            role=role,
            decision=decision if role == "risk" else "approve",
            must_change="Red-team the refund flow" if decision == "reject" and role == "risk" else "",
        )
    if overdue:
        condition_raise(
            response=blocking_responses(pilot)[0],
            actor=Actor.for_user(users["security"]),
            role="security",
            text="Rotate the API key",
            owner=users["owner"],
            due_date=timezone.localdate() - dt.timedelta(days=1),
        )
    if changed_after:
        stop_condition_add(
            pilot=pilot, actor=owner_actor, condition="Pause on complaints", metric="complaints",
            comparator="gt", threshold=Decimal(3),
        )  # fmt: skip
    gate = gate_of(pilot)
    expected = criteria_met and signed == 4 and decision != "reject" and not overdue and not changed_after
    assert gate.ready is expected
    assert bool(gate.reasons) is not expected
    texts = " | ".join(gate.reason_texts)
    if not criteria_met:
        assert "unanswered" in texts
    if signed == 3:
        assert "Product has not signed" in texts
    if decision == "reject" and not changed_after:
        assert "Risk & compliance rejected: Red-team the refund flow" in texts
    if overdue:
        assert "Condition overdue" in texts and "Rotate the API key" in texts
    if changed_after:
        assert "needs re-review" in texts and gate.needs_rereview
    assert all(reason.url for reason in gate.reasons), "every reason links to where it is fixed"


def test_signatures_go_stale_after_a_change_and_the_diff_names_criteria_and_statuses(
    ready_criteria, meeting, users, owner_actor
):
    sign_all(meeting, users)
    assert gate_of(ready_criteria).ready
    response = blocking_responses(ready_criteria)[0]
    response.refresh_from_db()
    response_update(response=response, actor=owner_actor, expected_version=response.version, status="partly_met")
    gate = gate_of(ready_criteria)
    assert not gate.ready and gate.needs_rereview
    assert all(r.stale for r in gate.roles)
    lines = [f"{line.subject}: {line.change}" for line in gate.diff]
    assert lines == [f"{response.criterion.code} {response.criterion.title}: Met → Partly met"]
    # Putting it back makes the same fingerprint: the signatures are current again.
    response.refresh_from_db()
    response_update(response=response, actor=owner_actor, expected_version=response.version, status="met")
    assert gate_of(ready_criteria).ready


def test_reassigning_a_criterion_does_not_undo_a_sign_off(ready_criteria, meeting, users, owner_actor):
    sign_all(meeting, users)
    response = Response.objects.filter(assessment__pilot=ready_criteria).first()
    response_update(response=response, actor=owner_actor, expected_version=response.version, owner=users["risk"])
    assert gate_of(ready_criteria).ready


def test_moving_to_production_needs_the_gate(ready_criteria, meeting, users, owner_actor):
    with pytest.raises(ValidationError) as refused:
        pilot_update(pilot=ready_criteria, actor=owner_actor, stage="production")
    assert "has not signed" in str(refused.value)
    assert Pilot.objects.get(pk=ready_criteria.pk).stage == "pilot"
    sign_all(meeting, users)
    before = AuditEvent.objects.count()
    pilot_update(pilot=Pilot.objects.get(pk=ready_criteria.pk), actor=owner_actor, stage="production")
    assert Pilot.objects.get(pk=ready_criteria.pk).stage == "production"
    event = AuditEvent.objects.order_by("-sequence").first()
    assert AuditEvent.objects.count() == before + 1 and event.changes["stage"] == ["pilot", "production"]


def test_only_an_administrator_overrides_the_gate_and_only_in_writing(pilot, users, owner_actor):
    admin = Actor.for_user(users["admin"])
    with pytest.raises(PermissionDenied):
        pilot_update(pilot=pilot, actor=owner_actor, stage="production", override_justification="x" * 40)
    with pytest.raises(ValidationError):
        pilot_update(pilot=pilot, actor=admin, stage="production", override_justification="because")
    assert not GateOverride.objects.exists()
    justification = "Regulator deadline; risk accepted by the CRO in writing on 1 Dec."
    pilot_update(pilot=pilot, actor=admin, stage="production", override_justification=justification)
    override = GateOverride.objects.get()
    assert override.justification == justification and override.gate_reasons
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event.action == "pilot.updated"
    assert event.changes["gate_override"] == [None, justification]
    assert event.changes["stage"] == ["pilot", "production"]


def test_a_stop_condition_that_triggers_pauses_the_pilot_and_mails_its_owner(
    pilot, users, owner_actor, mailoutbox, django_capture_on_commit_callbacks
):
    stop = stop_condition_add(
        pilot=pilot, actor=owner_actor, condition="Pause below 90%", metric="accuracy", comparator="lt",
        threshold=Decimal("0.9"),
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        stop_condition_update(stop=stop, actor=owner_actor, status="triggered")
    assert Pilot.objects.get(pk=pilot.pk).stage == "paused"
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event.changes["pilot_stage"] == ["pilot", "paused"]
    assert [m.to for m in mailoutbox] == [[users["owner"].email]]
    assert "paused" in mailoutbox[0].subject
