"""One open report of a kind per pilot: repeated requests return it; a lost job is sent again;
a finished report is rescored for held evidence without a failed rescore touching the report."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.pilots.services import pilot_create
from assessments.reports import services as report_services
from assessments.reports.models import Report, ReportStatus
from assessments.reports.services import report_request, reports_requeue_stale

pytestmark = pytest.mark.django_db


@pytest.fixture
def pilot(framework, users):
    return pilot_create(
        organisation=framework.organisation, actor=Actor.for_user(users["owner"]), name="Claims",
        risk_tier="high", technical_owner=users["owner"],
    )  # fmt: skip


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The report ids whose job was sent to the queue (the broker itself is tested elsewhere)."""
    ids: list[int] = []
    monkeypatch.setattr(report_services, "_enqueue_now", ids.append)
    return ids


def test_asking_again_while_one_waits_returns_it_and_sends_its_job_again(
    pilot, users, sent, django_capture_on_commit_callbacks
):
    viewer = Actor.for_user(users["viewer"])
    with django_capture_on_commit_callbacks(execute=True):
        first = report_request(kind="pilot", pilot=pilot, actor=viewer)
        again = [report_request(kind="pilot", pilot=pilot, actor=viewer) for _ in range(5)]
    assert {r.pk for r in again} == {first.pk}
    assert Report.objects.count() == 1
    assert AuditEvent.objects.filter(action="report.requested").count() == 1
    assert sent == [first.pk] * 6
    with django_capture_on_commit_callbacks(execute=True):
        other_kind = report_request(kind="sow_md", pilot=pilot, actor=viewer)
    assert other_kind.pk != first.pk
    Report.objects.filter(pk=first.pk).update(status=ReportStatus.FAILED, error="x")
    with django_capture_on_commit_callbacks(execute=True):
        fresh = report_request(kind="pilot", pilot=pilot, actor=viewer)
    assert fresh.pk not in {first.pk, other_kind.pk}


def test_a_report_whose_job_was_lost_is_sent_again_and_a_fresh_one_is_left_alone(pilot, users, sent):
    owner = Actor.for_user(users["owner"])
    old = report_request(kind="pilot", pilot=pilot, actor=owner, enqueue=False)
    new = report_request(kind="sow_md", pilot=pilot, actor=owner, enqueue=False)
    Report.objects.filter(pk=old.pk).update(requested_at=timezone.now() - dt.timedelta(minutes=5))
    assert reports_requeue_stale() == 1
    assert sent == [old.pk]
    assert Report.objects.get(pk=new.pk).status == ReportStatus.PENDING


def test_a_failed_rescore_after_a_sow_is_logged_and_leaves_the_report_done(pilot, users, monkeypatch, caplog):
    report = report_request(kind="sow_md", pilot=pilot, actor=Actor.for_user(users["owner"]), enqueue=False)

    def broken(**_: object) -> int:
        raise RuntimeError("scores table locked")

    monkeypatch.setattr(report_services, "scores_refresh_held", broken)
    with caplog.at_level(logging.ERROR):
        done = report_services.report_render_execute(report_id=report.pk)
    assert done is not None and done.status == ReportStatus.DONE and done.error == ""
    assert "rescoring pilot" in caplog.text
