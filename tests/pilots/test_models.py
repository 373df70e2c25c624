"""Database constraints hold even when code bypasses the services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from assessments.frameworks.models import Framework, FrameworkStatus
from assessments.pilots.models import Assessment, AssessmentStatus, Evidence, Response, ResponseStatus
from assessments.pilots.services import pilot_create


@pytest.fixture
def pilot(framework, users, owner_actor):
    return pilot_create(organisation=framework.organisation, actor=owner_actor, name="Claims triage")


def _violates(fn) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_not_applicable_needs_a_justification_in_the_database(pilot):
    response = Response.objects.filter(assessment__pilot=pilot).first()
    _violates(lambda: Response.objects.filter(pk=response.pk).update(status=ResponseStatus.NOT_APPLICABLE))


def test_a_criterion_is_answered_once_per_assessment(pilot):
    response = Response.objects.filter(assessment__pilot=pilot).first()
    _violates(lambda: Response.objects.create(assessment=response.assessment, criterion=response.criterion))


def test_a_pilot_has_at_most_one_open_assessment(pilot, framework):
    _violates(lambda: Assessment.objects.create(pilot=pilot, framework=framework))
    Assessment.objects.filter(pilot=pilot).update(status=AssessmentStatus.SUPERSEDED)
    Assessment.objects.create(pilot=pilot, framework=framework)


def test_link_evidence_needs_a_url_and_files_need_a_hash(pilot, users):
    response = Response.objects.filter(assessment__pilot=pilot).first()
    base = {"response": response, "title": "x", "effective_date": dt.date(2026, 1, 1), "added_by": users["owner"]}
    _violates(lambda: Evidence.objects.create(kind="link", **base))
    _violates(lambda: Evidence.objects.create(kind="file", file="evidence/x.pdf", **base))
    _violates(lambda: Evidence.objects.create(kind="note", **base))
    _violates(lambda: Evidence.objects.create(kind="link", url="https://x", expires_on=dt.date(2025, 1, 1), **base))


def test_a_draft_cannot_claim_a_publication_time(framework):
    _violates(
        lambda: Framework.objects.create(
            organisation=framework.organisation,
            name="x",
            version=1,
            status=FrameworkStatus.DRAFT,
            published_at=framework.published_at,
        )
    )
    _violates(
        lambda: Framework.objects.create(
            organisation=framework.organisation, name="y", version=1, status=FrameworkStatus.PUBLISHED
        )
    )
