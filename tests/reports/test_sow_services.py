"""sow_text_update: who may write, the version guard, the text rules and its one audit event."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.pilots.services import pilot_create
from assessments.reports.models import SowText
from assessments.reports.sow_services import SowTextConflictError, sow_text_update


@pytest.fixture
def pilot(framework, users, owner_actor):
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )


def test_it_records_one_audit_event_with_before_and_after(pilot, owner_actor):
    before = AuditEvent.objects.count()
    sow_text_update(pilot=pilot, actor=owner_actor, preamble="Hello", scope="All of it", expected_version=0)
    text = sow_text_update(
        pilot=pilot, actor=owner_actor, preamble="Hello again", scope="All of it", expected_version=1
    )
    assert text.version == 2
    events = list(AuditEvent.objects.order_by("sequence")[before:])
    assert [e.action for e in events] == ["sow_text.updated", "sow_text.updated"]
    assert events[0].changes == {"preamble": [None, "Hello"], "scope": [None, "All of it"], "version": [0, 1]}
    assert events[1].changes == {"preamble": ["Hello", "Hello again"], "version": [1, 2]}
    assert events[1].pilot_id == pilot.pk and events[1].object_id == str(text.pk)


def test_saving_the_same_text_again_changes_and_records_nothing(pilot, owner_actor):
    sow_text_update(pilot=pilot, actor=owner_actor, preamble="Hello", scope="", expected_version=0)
    before = AuditEvent.objects.count()
    assert sow_text_update(pilot=pilot, actor=owner_actor, preamble="Hello", scope="", expected_version=1).version == 1
    assert AuditEvent.objects.count() == before


def test_a_stale_version_changes_nothing(pilot, owner_actor, users):
    sow_text_update(pilot=pilot, actor=owner_actor, preamble="First", scope="", expected_version=0)
    admin = Actor.for_user(users["admin"])
    for stale in (0, 2):
        with pytest.raises(SowTextConflictError, match="changed by owner"):
            sow_text_update(pilot=pilot, actor=admin, preamble="Other", scope="", expected_version=stale)
    assert SowText.objects.get(pilot=pilot).preamble == "First"


@pytest.mark.parametrize("role", ["viewer", "delivery", "security", "risk", "product"])
def test_only_the_pilots_editors_write(pilot, users, role):
    with pytest.raises(PermissionDenied):
        sow_text_update(pilot=pilot, actor=Actor.for_user(users[role]), preamble="x", scope="", expected_version=0)
    assert not SowText.objects.filter(pilot=pilot).exists()


def test_an_owner_of_another_pilot_cannot_write(pilot, org, users):
    from assessments.organisations.services import membership_grant, user_create

    system = Actor.system("test")
    other = user_create(organisation=org, username="oscar", email="o@acme.test", password="pw-123456789", actor=system)
    membership_grant(organisation=org, user=other, role="owner", actor=system)
    with pytest.raises(PermissionDenied):
        sow_text_update(pilot=pilot, actor=Actor.for_user(other), preamble="x", scope="", expected_version=0)


def test_controls_are_refused_but_prose_keeps_newlines_and_markup_characters(pilot, owner_actor):
    with pytest.raises(ValidationError) as refused:
        sow_text_update(pilot=pilot, actor=owner_actor, preamble="a\x00b", scope="", expected_version=0)
    assert "preamble" in refused.value.message_dict
    text = "# not a heading\r\n| a | b |\n\t<script>\u202e"
    assert sow_text_update(pilot=pilot, actor=owner_actor, preamble="", scope=text, expected_version=0).scope == text
