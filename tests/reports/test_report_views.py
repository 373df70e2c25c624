"""The reports panel, the portfolio report page, status polling and downloads, by who asks."""

from __future__ import annotations

import subprocess

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from assessments.audit.context import Actor
from assessments.organisations.models import Role
from assessments.organisations.services import membership_grant, user_create
from assessments.pilots.services import pilot_create
from assessments.reports.models import Report, ReportKind, ReportStatus
from assessments.reports.portfolio import portfolio_context
from assessments.reports.services import report_render_execute, report_request

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


@pytest.fixture
def pilot(framework, users, owner_actor):
    return pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage",
        risk_tier="limited",
        technical_owner=users["owner"],
    )


@pytest.fixture
def outsider(other_org, default_spec) -> User:
    user = user_create(organisation=other_org, username="outsider", email="o@globex.test", password="pw", actor=SYSTEM)
    membership_grant(organisation=other_org, user=user, role=Role.ADMIN, actor=SYSTEM)
    return user


def _client(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def done(pilot, owner_actor) -> Report:
    report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=owner_actor)
    finished = report_render_execute(report_id=report.pk)
    assert finished is not None and finished.status == ReportStatus.DONE
    return finished


@pytest.mark.parametrize("role", list(Role.values))
def test_every_member_reads_the_panel_asks_for_a_report_and_downloads_it(role, users, pilot, done):
    client = _client(users[role])
    assert client.get(reverse("pilot-reports", args=[pilot.pk])).status_code == 200
    answer = client.post(reverse("pilot-report-new", args=[pilot.pk]), {"kind": "pilot"})
    assert answer.status_code == 302
    assert Report.objects.filter(pilot=pilot, requested_by=users[role], status=ReportStatus.PENDING).exists()
    download = client.get(reverse("report-download", args=[done.pk]))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Cache-Control"] == "private, no-store"
    assert b"".join(download.streaming_content).startswith(b"%PDF")


def test_another_organisation_gets_404_for_everything(outsider, pilot, done):
    client = _client(outsider)
    assert client.get(reverse("pilot-reports", args=[pilot.pk])).status_code == 404
    assert client.post(reverse("pilot-report-new", args=[pilot.pk]), {"kind": "pilot"}).status_code == 404
    assert client.get(reverse("report-status", args=[done.pk]), HTTP_HX_REQUEST="true").status_code == 404
    assert client.get(reverse("report-download", args=[done.pk])).status_code == 404
    assert Report.objects.count() == 1


def test_anonymous_people_are_sent_to_sign_in(pilot, done):
    client = _client(None)
    for url in (
        reverse("pilot-reports", args=[pilot.pk]),
        reverse("report-download", args=[done.pk]),
        reverse("portfolio-report"),
    ):
        answer = client.get(url)
        assert answer.status_code == 302 and "/login" in answer["Location"]


def test_a_pending_line_polls_and_a_finished_one_stops(users, pilot, owner_actor, done):
    pending = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=owner_actor)
    client = _client(users["viewer"])
    line = client.get(reverse("report-status", args=[pending.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in line and "Waiting to start" in line
    line = client.get(reverse("report-status", args=[done.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in line and reverse("report-download", args=[done.pk]) in line
    plain = client.get(reverse("report-status", args=[done.pk]))
    assert plain.status_code == 302 and plain["Location"] == reverse("pilot-reports", args=[pilot.pk])


def test_a_failed_report_shows_its_error(users, pilot, owner_actor, done):
    report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=owner_actor)
    Report.objects.filter(pk=report.pk).update(status=ReportStatus.FAILED, error="The renderer ran out of time.")
    page = _client(users["viewer"]).get(reverse("pilot-reports", args=[pilot.pk])).content.decode()
    assert "The renderer ran out of time." in page
    # Failed and ready do not look alike: each takes the house's colour for its state.
    assert '<span class="pill report-failed no">Failed</span>' in page
    assert '<span class="pill report-done ok">Ready</span>' in page
    assert reverse("report-download", args=[report.pk]) not in page
    assert _client(users["viewer"]).get(reverse("report-download", args=[report.pk])).status_code == 404


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("portfolio", "A portfolio report is asked for an organisation, not a pilot."),
        ("bogus", "Unknown kind of report: &#x27;bogus&#x27;."),
    ],
)
def test_a_kind_that_is_not_for_a_pilot_is_refused_with_a_message(users, pilot, kind, message):
    answer = _client(users["owner"]).post(reverse("pilot-report-new", args=[pilot.pk]), {"kind": kind}, follow=True)
    assert answer.redirect_chain == [(reverse("pilot-reports", args=[pilot.pk]), 302)]
    assert message in answer.content.decode()
    assert not Report.objects.exists()


def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(users, pilot):
    from assessments.audit.models import AuditEvent

    client = Client(enforce_csrf_checks=True)
    client.force_login(users["admin"])
    events = AuditEvent.objects.count()
    for url, data in (
        (reverse("pilot-report-new", args=[pilot.pk]), {"kind": "pilot"}),
        (reverse("portfolio-report-new"), {}),
        (reverse("sow-edit", args=[pilot.pk]), {"preamble": "Forged", "scope": "", "version": "0"}),
    ):
        assert client.post(url, data).status_code == 403, url
    assert not Report.objects.exists()
    assert AuditEvent.objects.count() == events
    # The same posts with the token go through: the refusal above is the token's doing.
    client.get(reverse("pilot-reports", args=[pilot.pk]))
    token = client.cookies["csrftoken"].value
    with_token = {"kind": "pilot", "csrfmiddlewaretoken": token}
    assert client.post(reverse("pilot-report-new", args=[pilot.pk]), with_token).status_code == 302


@pytest.mark.parametrize("role", list(Role.values))
def test_a_dossier_line_is_shown_only_to_those_who_may_see_dossiers(role, users, pilot):
    from django.utils import timezone

    dossier = Report.objects.create(
        organisation=pilot.organisation,
        pilot=pilot,
        kind=ReportKind.DOSSIER,
        status=ReportStatus.FAILED,
        error="acme has no signed checkpoint yet",
        requested_by=users["admin"],
        requested_at=timezone.now(),
    )
    client = _client(users[role])
    line = client.get(reverse("report-status", args=[dossier.pk]), HTTP_HX_REQUEST="true")
    if role in {Role.ADMIN, Role.RISK}:
        assert line.status_code == 200 and "no signed checkpoint" in line.content.decode()
    else:
        assert line.status_code == 403 and "no signed checkpoint" not in line.content.decode()
        assert client.get(reverse("report-status", args=[dossier.pk])).status_code == 403


def test_the_pilot_page_links_to_its_reports(users, pilot):
    page = _client(users["viewer"]).get(reverse("pilot", args=[pilot.pk])).content.decode()
    assert reverse("pilot-reports", args=[pilot.pk]) in page


def test_the_portfolio_page_shows_the_charts_and_makes_the_pdf(users, pilot, framework, tmp_path):
    client = _client(users["viewer"])
    page = client.get(reverse("portfolio-report")).content.decode()
    for heading in (
        "Stage funnel",
        "Readiness distribution",
        "Pilots blocked per gap",
        "Projected cost",
        "Oldest open",
    ):
        assert heading in page
    assert page.count("<svg") >= 3
    assert "0 of 1 pilot ready for production;" in page
    assert client.post(reverse("portfolio-report-new")).status_code == 302
    report = Report.objects.get(kind=ReportKind.PORTFOLIO)
    assert report.pilot is None and report.organisation == framework.organisation
    finished = report_render_execute(report_id=report.pk)
    assert finished is not None and finished.status == ReportStatus.DONE, finished and finished.error
    path = tmp_path / "portfolio.pdf"
    with finished.file.open("rb") as handle:
        path.write_bytes(handle.read())
    text = " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout.split())
    assert "Claims triage" in text and "0 of 1 pilot ready for production" in text
    assert "Evidence going stale" in text


def test_the_portfolio_says_how_much_stale_evidence_it_leaves_out(users, pilot, owner_actor, monkeypatch):
    import datetime as dt

    from assessments.pilots.models import Response
    from assessments.pilots.services import evidence_add
    from assessments.reports import portfolio

    long_ago = dt.date.today() - dt.timedelta(days=3 * 365)
    for n, response in enumerate(Response.objects.filter(assessment__pilot=pilot).order_by("pk")[:3]):
        evidence_add(
            response=response,
            actor=owner_actor,
            kind="link",
            title=f"Old run {n}",
            url="https://ci.example.com/",
            effective_date=long_ago,
        )
    monkeypatch.setattr(portfolio, "LIST_LIMIT", 1)
    page = _client(users["viewer"]).get(reverse("portfolio-report")).content.decode()
    assert "3 pieces of evidence are stale" in page
    assert '<p class="muted small">2 more are not listed.</p>' in page


def test_the_portfolio_counts_pilots_per_stage_and_score_band(pilot, framework, owner_actor):
    pilot_create(organisation=framework.organisation, actor=owner_actor, name="Second", risk_tier="minimal")
    context = portfolio_context(organisation=framework.organisation)
    assert dict(context["funnel"])["Pilot"] == 2
    assert sum(n for _label, n in context["distribution"]) == 2
    assert context["pilot_count"] == 2 and context["ready_count"] == 0


def test_the_portfolio_costs_the_same_queries_for_three_pilots_as_for_twelve(
    users, pilot, framework, owner_actor, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _client(users["viewer"])
    for n in range(2):
        pilot_create(organisation=framework.organisation, actor=owner_actor, name=f"Small {n}", risk_tier="minimal")
    with CaptureQueriesContext(connection) as three:
        assert client.get(reverse("portfolio-report")).status_code == 200
    for n in range(9):
        pilot_create(organisation=framework.organisation, actor=owner_actor, name=f"More {n}", risk_tier="high")
    with django_assert_max_num_queries(len(three.captured_queries)):
        assert client.get(reverse("portfolio-report")).status_code == 200


def test_a_request_queues_the_job_only_after_commit(users, pilot, owner_actor, django_capture_on_commit_callbacks):
    from unittest import mock

    with mock.patch("assessments.reports.tasks.report_render.delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=owner_actor)
        delay.assert_not_called()
        for callback in callbacks:
            callback()
        delay.assert_called_once_with(report.pk)


@pytest.mark.parametrize("role", list(Role.values))
def test_only_administrators_and_risk_ask_for_see_or_download_a_dossier(role, users, pilot, settings):
    from django.core.exceptions import PermissionDenied

    from assessments.audit.context import Actor
    from assessments.reports.services import report_request as request_report

    allowed = role in {Role.ADMIN, Role.RISK}
    from django.utils import timezone

    admin_made = Report.objects.create(
        organisation=pilot.organisation,
        pilot=pilot,
        kind=ReportKind.DOSSIER,
        requested_by=users["admin"],
        requested_at=timezone.now(),
    )
    if allowed:
        assert request_report(kind=ReportKind.DOSSIER, pilot=pilot, actor=Actor.for_user(users[role])).pk
    else:
        with pytest.raises(PermissionDenied, match="whole audit trail"):
            request_report(kind=ReportKind.DOSSIER, pilot=pilot, actor=Actor.for_user(users[role]))
    client = _client(users[role])
    panel = client.get(reverse("pilot-reports", args=[pilot.pk])).content.decode()
    assert ("Auditor&#x27;s dossier" in panel or "Auditor's dossier" in panel) is allowed
    download = client.get(reverse("report-download", args=[admin_made.pk]))
    assert download.status_code == (404 if allowed else 403)  # no file yet; refused before looking
