"""Moving an assessment to a newer framework version carries answers by criterion code."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from assessments.audit.models import AuditEvent
from assessments.frameworks.services import criterion_create, criterion_delete, framework_copy, framework_publish
from assessments.pilots.models import Assessment, Evidence, Response
from assessments.pilots.selectors import assessment_open
from assessments.pilots.services import assessment_migrate, evidence_add, pilot_create, response_update


@pytest.fixture
def pilot(framework, users, owner_actor):
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Mover", technical_owner=users["owner"]
    )
    for code in ("EV-01", "CO-05"):
        r = Response.objects.get(assessment__pilot=pilot, criterion__code=code)
        r = response_update(
            response=r, actor=owner_actor, expected_version=1, status="met", justification=f"{code} done"
        ).response
        evidence_add(
            response=r,
            actor=owner_actor,
            kind="link",
            title=f"{code} proof",
            url="https://x.test",
            effective_date=dt.date(2026, 11, 1),
        )
    return pilot


@pytest.fixture
def v2(framework, users):
    from assessments.audit.context import Actor

    admin = Actor.for_user(users["admin"])
    draft = framework_copy(framework=framework, actor=admin)
    criterion_delete(criterion=draft.criteria.get(code="CO-05"), actor=admin)
    criterion_create(
        gap=draft.gaps.get(key="evals"), actor=admin, code="EV-09", title="Latency budget", guidance="g",
        cost_if_missing="c", severity="major", evidence_expected="e",
    )  # fmt: skip
    return framework_publish(framework=draft, actor=admin)


def test_answers_and_evidence_carry_over_by_code(pilot, v2, owner_actor, framework):
    old = assessment_open(pilot=pilot)
    before = AuditEvent.objects.count()
    new = assessment_migrate(assessment=old, framework=v2, actor=owner_actor)
    assert AuditEvent.objects.count() == before + 1
    old.refresh_from_db()
    assert old.status == "superseded"
    assert assessment_open(pilot=pilot) == new
    ev01 = new.responses.get(criterion__code="EV-01")
    assert (ev01.status, ev01.justification) == ("met", "EV-01 done")
    assert Evidence.objects.filter(response=ev01, title="EV-01 proof").exists()
    assert new.responses.get(criterion__code="EV-09").status == "not_started"
    assert not new.responses.filter(criterion__code="CO-05").exists()
    assert old.responses.get(criterion__code="CO-05").status == "met"  # kept on record
    event = AuditEvent.objects.latest("sequence")
    assert event.changes["dropped_criteria"] == [None, 1] and event.changes["new_criteria"] == [None, 1]


@pytest.mark.parametrize("target", ["same", "draft", "foreign"])
def test_invalid_targets_are_refused_and_nothing_changes(
    pilot, framework, users, owner_actor, other_org, default_spec, target
):
    from assessments.audit.context import Actor
    from assessments.frameworks.services import framework_load

    old = assessment_open(pilot=pilot)
    if target == "same":
        fw = framework
    elif target == "draft":
        fw = framework_copy(framework=framework, actor=Actor.for_user(users["admin"]))
    else:
        fw = framework_load(organisation=other_org, spec=default_spec, actor=Actor.system("t"))
    with pytest.raises(ValidationError):
        assessment_migrate(assessment=old, framework=fw, actor=owner_actor)
    assert Assessment.objects.filter(pilot=pilot).count() == 1
    old.refresh_from_db()
    assert old.status == "draft"


def test_the_pilot_page_offers_the_move_and_the_preview_lists_differences(client, users, pilot, v2):
    client.force_login(users["owner"])
    page = client.get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert "A newer framework version" in page
    preview = client.get(reverse("assessment-migrate", args=[pilot.pk])).content.decode()
    assert "EV-09" in preview and "CO-05" in preview
    assert client.post(reverse("assessment-migrate", args=[pilot.pk])).status_code == 302
    assert assessment_open(pilot=pilot).framework == v2
    client.force_login(users["viewer"])
    assert client.post(reverse("assessment-migrate", args=[pilot.pk])).status_code == 403
