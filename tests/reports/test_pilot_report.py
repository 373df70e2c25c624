"""The pilot readiness report: what it says, how it is made, and that it never changes once done."""

from __future__ import annotations

import datetime as dt
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.pilots.models import Response
from assessments.pilots.services import evidence_add, pilot_create, response_update, stop_condition_add
from assessments.reports import renderers
from assessments.reports.models import Report, ReportKind, ReportStatus
from assessments.reports.sandbox import RenderError
from assessments.reports.services import report_render_execute, report_request
from assessments.reviews.services import meeting_schedule
from tests.reviews.conftest import meet_blockers, sign_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def pilot(framework, users, owner_actor):
    pilot = pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage",
        risk_tier="limited",
        technical_owner=users["owner"],
        value_metric_name="Minutes per claim",
        value_baseline=Decimal("14"),
        value_target=Decimal("6"),
    )
    stop_condition_add(
        pilot=pilot,
        actor=owner_actor,
        condition="Pause if wrongful denials exceed 1%",
        metric="wrongful denial rate",
        comparator="gt",
        threshold=Decimal("0.01"),
    )
    return pilot


def _render(pilot, actor: Actor) -> Report:
    report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=actor)
    done = report_render_execute(report_id=report.pk)
    assert done is not None
    return done


def _bytes(report: Report) -> bytes:
    with report.file.open("rb") as handle:
        return handle.read()


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def _pages(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def test_the_pdf_holds_the_sections_figures_and_names(pilot, users, owner_actor, tmp_path):
    security = Response.objects.filter(assessment__pilot=pilot, criterion__severity_high="blocking").order_by("pk")[0]
    response_update(
        response=security,
        actor=owner_actor,
        expected_version=security.version,
        owner=users["security"],
        due_date=timezone.localdate() + dt.timedelta(days=20),
    )
    report = _render(pilot, owner_actor)
    assert report.status == ReportStatus.DONE, report.error
    pdf = _bytes(report)
    text = " ".join(_text(pdf, tmp_path).split())
    for section in (
        "Executive summary",
        "Value metric and stop conditions",
        "The six gaps at a glance",
        "Evals",
        "Observability",
        "Guardrails",
        "Governance",
        "Cost",
        "Ownership",
        "Conditions",
        "Sign-offs and overrides",
        "Audit record",
        "Contents",
    ):
        assert section in text, section
    assert "Claims triage" in text
    assert "NOT READY for production" in text
    assert "This is the first readiness report for this pilot." in text
    assert "This report is UNSIGNED" in text
    assert "Minutes per claim" in text
    assert "Pause if wrongful denials exceed 1%" in text
    assert security.criterion.code in text
    assert "security" in text  # the named owner of the first blocker
    assert f"R-{report.pk}" in text
    assert "Page 1 of" in text or "Page 2 of" in text
    assert report.summary["overall"] is not None
    assert f"{report.summary['overall']} / 100" in text
    assert 5 <= _pages(pdf, tmp_path) <= 20


def test_the_rendered_event_carries_the_files_hash(pilot, owner_actor):
    report = _render(pilot, owner_actor)
    actions = list(
        AuditEvent.objects.filter(object_type="report", object_id=str(report.pk)).values_list("action", "changes")
    )
    assert [a for a, _c in actions] == ["report.requested", "report.rendered"]
    assert actions[1][1]["sha256"] == [None, report.sha256]
    import hashlib

    assert hashlib.sha256(_bytes(report)).hexdigest() == report.sha256
    assert report.size == len(_bytes(report))
    assert len(report.fingerprint) == 64


def test_a_finished_report_stays_byte_identical_after_the_assessment_changes(pilot, owner_actor):
    report = _render(pilot, owner_actor)
    before = _bytes(report)
    meet_blockers(pilot, owner_actor)
    report.refresh_from_db()
    assert _bytes(report) == before
    assert report_render_execute(report_id=report.pk) is None  # a finished report is never rendered again
    report.refresh_from_db()
    assert _bytes(report) == before
    newer = _render(pilot, owner_actor)
    assert newer.sha256 != report.sha256
    assert newer.fingerprint != report.fingerprint


def test_a_second_report_compares_its_score_with_the_previous_one(pilot, owner_actor, tmp_path):
    first = _render(pilot, owner_actor)
    meet_blockers(pilot, owner_actor)
    second = _render(pilot, owner_actor)
    text = " ".join(_text(_bytes(second), tmp_path).split())
    delta = second.summary["overall"] - first.summary["overall"]
    assert delta > 0
    assert f"Up {delta} points since the previous report R-{first.pk}" in text


def test_signatures_are_listed_with_the_fingerprint_they_signed(pilot, users, owner_actor, tmp_path):
    meet_blockers(pilot, owner_actor)
    meeting = meeting_schedule(
        pilot=pilot,
        actor=owner_actor,
        scheduled_at=timezone.now() + dt.timedelta(days=1),
        participants=[(users[r], r) for r in ("delivery", "security", "risk", "product")],
        location="Room 1",
    )
    sign_all(meeting, users)
    report = _render(pilot, owner_actor)
    text = " ".join(_text(_bytes(report), tmp_path).split())
    assert "UNSIGNED" not in text
    assert "READY for production" in text and "NOT READY" not in text
    for role in ("Delivery", "Security", "Risk", "Product"):
        assert role in text
    assert report.fingerprint[:16] in text.replace(" ", "")


def test_a_duplicate_delivery_does_nothing(pilot, owner_actor):
    report = _render(pilot, owner_actor)
    events = AuditEvent.objects.count()
    assert report_render_execute(report_id=report.pk) is None
    assert AuditEvent.objects.count() == events
    assert Report.objects.get(pk=report.pk).attempts == 1


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (RenderError("rendering took longer than 60 seconds and was stopped"), "longer than 60 seconds"),
        (RuntimeError("boom /etc/secret"), "internal error (RuntimeError)"),
    ],
)
def test_a_render_failure_leaves_a_failed_row_with_a_readable_error(pilot, owner_actor, monkeypatch, error, message):
    def broken(report: Report) -> renderers.Rendered:
        raise error

    monkeypatch.setitem(renderers._REGISTRY, ReportKind.PILOT, broken)
    report = _render(pilot, owner_actor)
    assert report.status == ReportStatus.FAILED
    assert message in report.error
    assert "/etc/secret" not in report.error
    assert not report.file and not report.sha256
    assert AuditEvent.objects.filter(object_type="report", object_id=str(report.pk), action="report.failed").exists()


def test_a_pilot_without_an_open_assessment_fails_with_a_sentence(pilot, owner_actor):
    report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=owner_actor)
    pilot.assessments.update(status="superseded")
    done = report_render_execute(report_id=report.pk)
    assert done is not None and done.status == ReportStatus.FAILED
    # The reason, not "an internal error ... tell an administrator".
    assert done.error == "Claims triage has no open assessment to report on."


def test_a_row_handed_back_after_its_last_attempt_fails_instead_of_waiting_for_ever(pilot, owner_actor, monkeypatch):
    from django.db import OperationalError

    from assessments.reports.services import MAX_ATTEMPTS

    def flaky(report: Report) -> renderers.Rendered:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setitem(renderers._REGISTRY, ReportKind.PILOT, flaky)
    report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=owner_actor)
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(OperationalError):
            report_render_execute(report_id=report.pk)
    report.refresh_from_db()
    assert (report.status, report.attempts, report.started_at) == (ReportStatus.PENDING, MAX_ATTEMPTS, None)
    # The job's next retry finds nothing it may claim: the row fails, so its line stops polling.
    assert report_render_execute(report_id=report.pk) is None
    report.refresh_from_db()
    assert report.status == ReportStatus.FAILED and "request the report again" in report.error
    failed = AuditEvent.objects.get(object_type="report", object_id=str(report.pk), action="report.failed")
    assert failed.changes["status"] == [ReportStatus.PENDING, ReportStatus.FAILED]


def test_a_report_the_queue_refuses_fails_with_a_sentence_instead_of_a_500(
    pilot, owner_actor, django_capture_on_commit_callbacks
):
    from unittest import mock

    from kombu.exceptions import OperationalError as BrokerUnavailable

    refused = BrokerUnavailable("Error 111 connecting to redis:6379. Connection refused.")
    with (
        mock.patch("assessments.reports.tasks.report_render.delay", side_effect=refused) as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=owner_actor)
    delay.assert_called_once_with(report.pk)
    report.refresh_from_db()
    assert report.status == ReportStatus.FAILED
    assert report.error.startswith("The report could not be queued") and "redis" not in report.error


def test_the_report_date_names_the_time_zone_it_is_shown_in(pilot, settings):
    import re

    from assessments.reports.pilot_report import pilot_report_html

    settings.TIME_ZONE = "Europe/Berlin"
    page = pilot_report_html(pilot=pilot)
    assert re.search(r"<dt>Report date</dt><dd>\d{1,2} \w+ \d{4}, \d{2}:\d{2} CES?T</dd>", page), page[:2000]
    assert "UTC" not in page


def test_the_blockers_beyond_the_top_ones_are_counted_not_assumed(pilot, monkeypatch):
    from assessments.reports import pilot_report

    total = len(pilot_report.pilot_report_context(pilot=pilot)["blockers"])
    assert total > 2
    monkeypatch.setattr(pilot_report, "TOP_BLOCKERS", total - 1)
    page = pilot_report.pilot_report_html(pilot=pilot)
    assert "1 more blocking criterion is listed in the gap sections." in page
    monkeypatch.setattr(pilot_report, "TOP_BLOCKERS", total - 2)
    assert "2 more blocking criteria are listed in the gap sections." in pilot_report.pilot_report_html(pilot=pilot)


def test_strangers_cannot_ask_for_a_report(pilot, other_org):
    from django.contrib.auth.models import User
    from django.core.exceptions import PermissionDenied

    stranger = User.objects.create_user("stranger")
    with pytest.raises(PermissionDenied):
        report_request(kind=ReportKind.PILOT, pilot=pilot, actor=Actor.for_user(stranger))
    assert not Report.objects.exists()


def test_viewers_may_ask_for_a_report(pilot, users):
    report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=Actor.for_user(users["viewer"]))
    assert report.status == ReportStatus.PENDING
    assert report.requested_by == users["viewer"]


def test_the_database_refuses_a_pilot_report_without_a_pilot_and_a_done_report_without_a_file(pilot):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(organisation=pilot.organisation, kind=ReportKind.PILOT, requested_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(
            organisation=pilot.organisation,
            pilot=pilot,
            kind=ReportKind.PILOT,
            status=ReportStatus.DONE,
            requested_at=timezone.now(),
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(
            organisation=pilot.organisation,
            pilot=pilot,
            kind=ReportKind.PILOT,
            status=ReportStatus.FAILED,
            requested_at=timezone.now(),
        )


def test_the_task_skips_a_missing_row():
    from assessments.reports.tasks import report_render

    assert report_render.run(987654) == "missing"


def test_the_command_writes_the_pdf(pilot, tmp_path):
    from django.core.management import call_command

    out = tmp_path / "out.pdf"
    call_command("report_render", "--pilot", pilot.slug, "--out", str(out))
    assert out.read_bytes().startswith(b"%PDF")
    report = Report.objects.get()
    assert report.status == ReportStatus.DONE and report.requested_by is None


def test_evidence_titles_appear_with_their_dates(pilot, owner_actor, tmp_path):
    response = Response.objects.filter(assessment__pilot=pilot).order_by("pk")[0]
    evidence_add(
        response=response,
        actor=owner_actor,
        kind="link",
        title="Golden set run 42",
        url="https://ci.example.com/42",
        effective_date=dt.date(2026, 11, 3),
    )
    text = " ".join(_text(_bytes(_render(pilot, owner_actor)), tmp_path).split())
    assert "Golden set run 42" in text
    assert "effective 3 Nov 2026" in text


def test_a_transient_error_hands_the_row_back_for_the_retry(pilot, owner_actor, monkeypatch):
    from django.db import OperationalError

    def flaky(report: Report) -> renderers.Rendered:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setitem(renderers._REGISTRY, ReportKind.PILOT, flaky)
    report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=owner_actor)
    with pytest.raises(OperationalError):
        report_render_execute(report_id=report.pk)
    report.refresh_from_db()
    assert report.status == ReportStatus.PENDING and report.attempts == 1 and not report.error
    monkeypatch.undo()
    done = report_render_execute(report_id=report.pk)
    assert done is not None and done.status == ReportStatus.DONE and done.attempts == 2
