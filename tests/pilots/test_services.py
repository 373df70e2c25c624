"""Pilot services: opening assessments, saving responses safely, adding evidence."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core.exceptions import ValidationError

from assessments.audit.context import Actor
from assessments.pilots.models import Evidence, Response, ResponseStatus
from assessments.pilots.selectors import assessment_open, scorecard
from assessments.pilots.services import (
    ResponseConflictError,
    UploadedEvidenceFile,
    evidence_add,
    pilot_create,
    response_update,
)

TODAY = dt.date(2026, 11, 22)


@pytest.fixture
def pilot(framework, users, owner_actor):
    return pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage",
        risk_tier="high",
        technical_owner=users["owner"],
    )


def test_creating_a_pilot_opens_an_assessment_with_every_criterion(pilot, framework):
    assessment = assessment_open(pilot=pilot)
    assert assessment is not None
    assert assessment.framework == framework
    assert assessment.responses.count() == framework.criteria.count()
    assert set(assessment.responses.values_list("status", flat=True)) == {ResponseStatus.NOT_STARTED}
    assert pilot.slug == "claims-triage"


def test_two_pilots_whose_names_slugify_alike_get_distinct_slugs(pilot, framework, owner_actor):
    # "Claims triage" itself is taken: one organisation cannot hold two pilots of one name.
    again = pilot_create(organisation=framework.organisation, actor=owner_actor, name="Claims-triage")
    assert again.slug == "claims-triage-2"


def test_a_new_pilot_is_not_ready_and_lists_every_blocker(pilot, framework):
    card = scorecard(assessment=assessment_open(pilot=pilot), today=TODAY)
    assert card.is_ready is False
    blocking = framework.criteria.filter(severity_high="blocking").count()
    assert len(card.blockers) == blocking
    assert card.overall == 0


def test_not_applicable_without_a_reason_is_refused_and_nothing_changes(pilot, owner_actor):
    response = Response.objects.filter(assessment__pilot=pilot).first()
    with pytest.raises(ValidationError) as excinfo:
        response_update(response=response, actor=owner_actor, expected_version=1, status="not_applicable")
    assert "justification" in excinfo.value.message_dict
    response.refresh_from_db()
    assert (response.status, response.version) == (ResponseStatus.NOT_STARTED, 1)


def test_a_stale_version_gets_a_conflict_and_keeps_the_first_save(pilot, users, owner_actor):
    response = Response.objects.filter(assessment__pilot=pilot).first()
    response = response_update(
        response=response, actor=owner_actor, expected_version=1, owner=users["security"]
    ).response
    security = Actor.for_user(users["security"])
    response_update(response=response, actor=security, expected_version=2, status="not_met", justification="No probes")
    stale = Response.objects.get(pk=response.pk)
    with pytest.raises(ResponseConflictError) as excinfo:
        response_update(response=stale, actor=owner_actor, expected_version=2, status="met")
    assert excinfo.value.current.status == "not_met"
    assert "security" in str(excinfo.value)
    response.refresh_from_db()
    assert (response.status, response.version, response.updated_by) == ("not_met", 3, users["security"])


def test_meeting_every_blocker_with_fresh_evidence_makes_the_pilot_ready(pilot, owner_actor):
    assessment = assessment_open(pilot=pilot)
    for response in assessment.responses.select_related("criterion"):
        response_update(response=response, actor=owner_actor, expected_version=response.version, status="met")
        if response.criterion.severity_for(pilot.risk_tier) == "blocking":
            evidence_add(
                response=response,
                actor=owner_actor,
                kind="link",
                title="Run",
                url="https://ci.example.test/run/1",
                effective_date=TODAY,
            )
    card = scorecard(assessment=assessment, today=TODAY)
    assert card.overall == 100
    assert card.is_ready, card.reasons
    # ...and a year later every item is stale, so it fails closed again.
    later = scorecard(assessment=assessment, today=TODAY + dt.timedelta(days=800))
    assert later.is_ready is False
    assert all(b.reason == "marked met but all its evidence has expired" for b in later.blockers)


def test_file_evidence_is_stored_under_a_random_name_with_its_hash(pilot, owner_actor):
    response = Response.objects.filter(assessment__pilot=pilot).first()
    evidence = evidence_add(
        response=response,
        actor=owner_actor,
        kind="file",
        title="Eval report",
        effective_date=TODAY,
        upload=UploadedEvidenceFile(name="report.pdf", content=b"%PDF-1.7 hello", content_type="application/pdf"),
    )
    assert evidence.sha256 == hashlib.sha256(b"%PDF-1.7 hello").hexdigest()
    assert "report" not in evidence.file.name
    assert evidence.file.read() == b"%PDF-1.7 hello"
    assert Evidence.objects.get(pk=evidence.pk).original_filename == "report.pdf"
