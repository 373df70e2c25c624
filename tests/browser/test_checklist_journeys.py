"""Whole journeys in real Chromium: sign in, fill the checklist, upload, see scores move."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from assessments.pilots.models import Evidence, Response
from assessments.pilots.services import pilot_create, response_update

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-only"


@pytest.fixture
def pilot(framework, users, owner_actor):
    return pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage assistant",
        technical_owner=users["owner"],
        risk_tier="limited",
        value_metric_name="Minutes per claim",
        value_metric_unit="min",
    )


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("AI pilots")


def row(page, response: Response):
    return page.locator(f"#row-{response.pk}")


def open_row(page, response: Response):
    """Open a compact line into its editor, in place."""
    row(page, response).locator("a.line-main").click()
    expect(page.locator(f"#row-{response.pk}.is-expanded")).to_be_visible()
    return row(page, response)


def test_an_owner_fills_two_gaps_uploads_evidence_and_sees_scores_change(
    page, live_server, users, pilot, shot, tmp_path
):
    sign_in(page, live_server, "owner")
    shot("dashboard")
    page.get_by_role("link", name="Claims triage assistant").click()
    expect(page.get_by_test_id("overall-score")).to_have_text("0")
    shot("pilot-before")
    evals = list(
        Response.objects.filter(assessment__pilot=pilot, criterion__gap__key="evals").select_related("criterion")[:2]
    )
    cost = list(
        Response.objects.filter(assessment__pilot=pilot, criterion__gap__key="cost").select_related("criterion")[:2]
    )
    marker = page.evaluate("() => { window.__noReload = 'still-here'; return window.__noReload; }")
    for response in evals + cost:
        r = row(page, response)
        r.get_by_label("Status").select_option("met")
        expect(r.locator(".saved")).to_be_visible()
    expect(page.get_by_test_id("gap-score-evals")).not_to_have_text("0")
    expect(page.get_by_test_id("gap-score-cost")).not_to_have_text("0")
    expect(page.get_by_test_id("overall-score")).not_to_have_text("0")
    assert page.evaluate("() => window.__noReload") == marker  # scores changed without a reload

    # Upload a real file as evidence for the first criterion.
    report = tmp_path / "golden-set-run.csv"
    report.write_text("case,expected,passed\n1,refund,true\n2,escalate,true\n", encoding="utf-8")
    r = open_row(page, evals[0])
    r.get_by_role("link", name="Add evidence").click()
    r.get_by_label("Kind").select_option("file")
    r.get_by_label("Title").fill("Golden-set run 2026-11-20")
    r.get_by_label(re.compile(r"^File")).set_input_files(str(report))
    r.get_by_role("button", name="Add evidence").click()
    expect(row(page, evals[0]).get_by_role("link", name="Golden-set run 2026-11-20")).to_be_visible()
    shot("pilot-after")
    evidence = Evidence.objects.get()
    assert evidence.original_filename == "golden-set-run.csv"
    assert Response.objects.filter(assessment__pilot=pilot, status="met").count() == 4


def test_a_viewer_cannot_edit_and_a_forged_request_gets_403(page, live_server, users, pilot, shot):
    sign_in(page, live_server, "viewer")
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    expect(page.locator(".crit-form")).to_have_count(0)
    expect(page.locator(".line-status")).to_have_count(0)
    shot("viewer")
    response = Response.objects.filter(assessment__pilot=pilot).first()
    status = page.evaluate(
        """async ([url, pk]) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'];
            const body = new URLSearchParams({[`r${pk}-status`]: 'met', [`r${pk}-version`]: '1'});
            const r = await fetch(url, {method: 'POST', body, headers: {'X-CSRFToken': token, 'HX-Request': 'true'}});
            return r.status;
        }""",
        [f"{live_server.url}/responses/{response.pk}/", response.pk],
    )
    assert status == 403
    response.refresh_from_db()
    assert response.status == "not_started"


def test_the_second_editor_sees_a_conflict_with_the_other_change(page, live_server, users, pilot, owner_actor, shot):
    sign_in(page, live_server, "owner")
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    response = Response.objects.select_related("criterion").filter(assessment__pilot=pilot).first()
    # Someone else saves the same criterion after this page was loaded.
    response_update(
        response=response, actor=owner_actor, expected_version=1, status="not_met", justification="No golden set yet"
    )
    r = row(page, response)
    r.get_by_label("Status").select_option("met")
    expect(row(page, response).locator(".conflict")).to_contain_text("changed")
    expect(row(page, response).locator(".conflict")).to_contain_text("Not met")
    shot("conflict")
    response.refresh_from_db()
    assert response.status == "not_met"


def test_hostile_input_is_refused_or_inert(page, live_server, users, pilot, shot, tmp_path):
    sign_in(page, live_server, "owner")
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    page.on("dialog", lambda d: pytest.fail(f"a dialog opened: {d.message}"))
    response = Response.objects.filter(assessment__pilot=pilot).first()
    r = open_row(page, response)
    r.get_by_role("link", name="Add evidence").click()
    r.get_by_label("Kind").select_option("note")
    r.get_by_label("Title").fill('<img src=x onerror="alert(1)">')
    r.get_by_label("Note (Markdown)").fill(
        '<script>alert(2)</script>[x](javascript:alert(3)) <b onmouseover="alert(4)">hover</b>'
    )
    r.get_by_role("button", name="Add evidence").click()
    r = row(page, response)
    expect(r.locator(".note")).to_contain_text("hover")
    assert r.locator(".note script").count() == 0
    assert r.locator('.note a[href^="javascript"]').count() == 0
    r.locator(".note").hover()

    disguised = tmp_path / "totally-a-report.pdf"
    disguised.write_bytes(b"<html><script>alert(5)</script></html>")
    r.get_by_role("link", name="Add evidence").click()
    r.get_by_label("Kind").select_option("file")
    r.get_by_label("Title").fill("Disguised")
    r.get_by_label(re.compile(r"^File")).set_input_files(str(disguised))
    r.get_by_role("button", name="Add evidence").click()
    expect(row(page, response).get_by_role("alert")).to_contain_text("not an accepted file type")
    shot("hostile")
    assert Evidence.objects.filter(kind="file").count() == 0


def test_the_pilot_page_is_readable_at_360px(page, live_server, users, pilot, shot):
    page.set_viewport_size({"width": 360, "height": 800})
    sign_in(page, live_server, "owner")
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"page scrolls sideways at 360px ({width}px wide)"
    shot("narrow")
