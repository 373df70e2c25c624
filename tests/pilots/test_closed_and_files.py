"""Closed assessments are read-only everywhere; a failed upload leaves no file behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from assessments.audit.models import AuditEvent
from assessments.frameworks.services import framework_copy, framework_publish
from assessments.pilots.models import Evidence, Pilot, Response
from assessments.pilots.services import (
    AssessmentClosedError,
    UploadedEvidenceFile,
    assessment_move,
    evidence_add,
    evidence_remove,
    pilot_create,
    response_update,
)

HTMX = {"HTTP_HX_REQUEST": "true"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Closed case", technical_owner=users["owner"]
    )


@pytest.fixture
def old_response(pilot, framework, users, owner_actor) -> Response:
    """A response of an assessment that has been superseded by a move to framework v2."""
    from assessments.audit.context import Actor

    admin = Actor.for_user(users["admin"])
    draft = framework_copy(framework=framework, actor=admin)
    newer = framework_publish(framework=draft, actor=admin)
    response = Response.objects.select_related("assessment").get(assessment__pilot=pilot, criterion__code="EV-01")
    evidence_add(
        response=response,
        actor=owner_actor,
        kind="link",
        title="Old run",
        url="https://ci.example.com/1",
        effective_date=dt.date(2026, 11, 1),
    )
    assessment_move(assessment=response.assessment, framework=newer, actor=owner_actor)
    return Response.objects.select_related("assessment__pilot", "criterion").get(pk=response.pk)


def _media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_services_refuse_every_change_to_a_superseded_assessment(old_response, owner_actor):
    events = AuditEvent.objects.count()
    with pytest.raises(AssessmentClosedError, match="superseded"):
        response_update(response=old_response, actor=owner_actor, expected_version=old_response.version, status="met")
    with pytest.raises(AssessmentClosedError):
        evidence_add(
            response=old_response,
            actor=owner_actor,
            kind="note",
            title="Late",
            note="x",
            effective_date=dt.date(2026, 11, 2),
        )
    with pytest.raises(AssessmentClosedError):
        evidence_remove(evidence=Evidence.objects.get(response=old_response), actor=owner_actor)
    assert AuditEvent.objects.count() == events
    assert Evidence.objects.filter(response=old_response).count() == 1


def test_saving_a_row_of_a_superseded_assessment_is_a_409_with_the_reason_not_a_500(client, users, old_response):
    client.force_login(users["owner"])
    data = {f"r{old_response.pk}-version": old_response.version, f"r{old_response.pk}-status": "met"}
    answer = client.post(reverse("response-save", args=[old_response.pk]), data, **HTMX)
    assert answer.status_code == 409
    body = answer.content.decode()
    assert "superseded by a newer framework version and is read-only" in body
    assert "<form" not in body.split(f'id="row-{old_response.pk}"')[1].split("</article>")[0]
    old_response.refresh_from_db()
    assert old_response.status == "not_started"


def test_adding_evidence_to_a_superseded_assessment_is_refused_in_the_browser_too(client, users, old_response):
    client.force_login(users["owner"])
    url = reverse("evidence-new", args=[old_response.pk])
    assert client.get(url, **HTMX).status_code == 409
    answer = client.post(url, {"kind": "note", "title": "Late", "note": "x", "effective_date": "2026-11-02"})
    assert answer.status_code == 302
    followed = client.get(answer["Location"])
    assert "read-only" in followed.content.decode()
    assert Evidence.objects.filter(response=old_response).count() == 1


def test_a_failed_audit_insert_leaves_no_uploaded_file(pilot, owner_actor, settings, monkeypatch):
    from assessments.pilots import services

    def broken_audit(**kwargs):
        raise RuntimeError("audit insert failed")

    monkeypatch.setattr(services, "audit_record", broken_audit)
    response = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-01")
    with pytest.raises(RuntimeError):
        evidence_add(
            response=response,
            actor=owner_actor,
            kind="file",
            title="Run",
            effective_date=dt.date(2026, 11, 1),
            upload=UploadedEvidenceFile(name="run.pdf", content=PDF, content_type="application/pdf"),
        )
    assert _media_files(settings) == []
    assert not Evidence.objects.filter(response=response).exists()


def test_a_failed_validation_writes_no_file(pilot, owner_actor, settings):
    response = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-01")
    with pytest.raises(ValidationError):
        evidence_add(
            response=response,
            actor=owner_actor,
            kind="file",
            title="x" * 500,
            effective_date=dt.date(2026, 11, 1),
            upload=UploadedEvidenceFile(name="run.pdf", content=PDF, content_type="application/pdf"),
        )
    assert _media_files(settings) == []


def test_an_upload_refused_by_the_view_leaves_no_file(client, users, pilot, settings):
    client.force_login(users["owner"])
    response = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-01")
    answer = client.post(
        reverse("evidence-new", args=[response.pk]),
        {
            "kind": "file",
            "title": "Run",
            "effective_date": "2026-11-02",
            "expires_on": "2026-11-01",
            "file": SimpleUploadedFile("run.pdf", PDF, content_type="application/pdf"),
        },
        **HTMX,
    )
    assert answer.status_code == 422
    assert _media_files(settings) == []


def test_a_successful_upload_keeps_exactly_one_file(pilot, owner_actor, settings):
    response = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-01")
    evidence = evidence_add(
        response=response,
        actor=owner_actor,
        kind="file",
        title="Run",
        effective_date=dt.date(2026, 11, 1),
        upload=UploadedEvidenceFile(name="run.pdf", content=PDF, content_type="application/pdf"),
    )
    files = _media_files(settings)
    assert len(files) == 1
    assert files[0].read_bytes() == PDF
    assert evidence.file.name.startswith("evidence/") and evidence.file.name.endswith(".pdf")
