"""Linked systems in real Chromium: link an eval file, write a check, watch its verdict arrive
without a reload, make it fail, and see the failure on the pilot's checklist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from assessments.evidence import tasks
from assessments.evidence.models import Check, CheckRun, LinkedSystem, RunStatus, Verdict
from assessments.evidence.services import check_run_execute
from assessments.frameworks.models import Criterion
from assessments.pilots.models import Pilot
from assessments.pilots.services import pilot_create
from tests.browser.conftest import Shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-only"
FIXTURES = Path(settings.BASE_DIR) / "fixtures" / "evidence"
POLL = 8_000  # ms: the card polls every 2 s; leave room for a slow CI machine


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name="Claims triage assistant",
        technical_owner=users["owner"],
        risk_tier="limited",
    )


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Runs the app enqueues, in order, instead of sending them to the broker.

    The test plays the worker: it executes each queued run itself, so the page has to
    pick the verdict up by polling, exactly as it would from a real worker.
    """
    runs: list[int] = []
    monkeypatch.setattr(tasks.check_run, "delay", runs.append)
    return runs


def sign_in(page: Page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("AI pilots")


def work_off(queued: list[int]) -> CheckRun:
    """Be the worker for the one run the last action queued."""
    assert len(queued) == 1, f"expected one queued run, got {queued}"
    run = check_run_execute(run_id=queued.pop())
    assert run is not None and run.status == RunStatus.OK, run and run.message
    return run


def test_an_owner_links_an_eval_file_checks_it_and_sees_the_verdict_flip(
    page: Page, browser: Browser, live_server, users, pilot: Pilot, queued: list[int], mailoutbox, shot: Shot
) -> None:
    ev03 = Criterion.objects.get(framework__organisation=pilot.organisation, code="EV-03")
    sign_in(page, live_server, "owner")
    page.get_by_role("link", name="Claims triage assistant").click()
    page.get_by_role("link", name="Linked systems & checks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Linked systems and checks")
    expect(page.get_by_text("No systems linked yet.")).to_be_visible()
    expect(page.get_by_text("Link a system first.")).to_be_visible()
    shot("01-empty")

    # Link a system by uploading the eval results pytest wrote.
    link = page.locator("section.card", has=page.get_by_role("heading", name="Link a system"))
    link.get_by_label("Kind of system").select_option(label="GitHub repository")
    expect(link.get_by_label("Repository")).to_be_visible()
    expect(link.get_by_label("Or upload a file")).to_be_hidden()
    link.get_by_label("Kind of system").select_option(label="Eval results (file or URL)")
    expect(link.get_by_label("Repository")).to_be_hidden()  # only the chosen kind's fields show
    link.get_by_label("Name").fill("Golden set (pytest)")
    link.get_by_label("Or upload a file").set_input_files(str(FIXTURES / "junit-goldenset-pass.xml"))
    link.get_by_role("button", name="Link").click()
    expect(page.locator(".message")).to_contain_text("Linked Golden set (pytest)")
    system = LinkedSystem.objects.get(pilot=pilot)
    card = page.locator(f"#system-{system.pk}")
    expect(card.get_by_role("heading", level=2)).to_contain_text("Golden set (pytest)")
    expect(card).to_contain_text("junit-goldenset-pass.xml")
    expect(card).to_contain_text("No checks on this system yet.")
    assert not queued  # linking alone runs nothing
    shot("02-linked")

    # Add a check; its first run is queued and the card polls until it finishes.
    add = page.locator("section.card", has=page.get_by_role("heading", name="Add a check"))
    add.get_by_label("Linked system").select_option(label="Golden set (pytest)")
    add.get_by_label("Criterion").select_option(label=f"EV-03 {ev03.title}")
    # Both forms on this page have a "Name" field with the same id, so the label points
    # at the first; reach this form's own field by its name.
    add.locator("input[name=name]").fill("Golden-set pass rate")
    add.get_by_label("Metric").fill("pass_rate")
    add.get_by_label("Comparator").select_option(label="≥")
    add.get_by_label("Threshold").fill("0.9")
    add.get_by_role("button", name="Save the rule and run it").click()
    expect(page.locator(".message")).to_contain_text("its first run is queued")
    check = Check.objects.get(linked_system=system)
    check_card = page.locator(f"#check-{check.pk}")
    expect(check_card.get_by_role("status")).to_have_text("Queued…")
    expect(check_card).to_have_attribute("hx-trigger", "every 2s")
    expect(check_card.get_by_role("button", name="Re-check now")).to_be_disabled()
    expect(check_card).to_contain_text("pass_rate ≥ 0.9")
    shot("03-queued")

    marker = page.evaluate("() => (window.__sameDocument = 'kept')")
    work_off(queued)
    expect(check_card.locator(".pill.ok")).to_have_text("Pass", timeout=POLL)
    expect(check_card.locator(".check-message")).to_contain_text("pass_rate 1 ≥ 0.9 — 16 of 16 cases passed")
    expect(check_card).not_to_have_attribute("hx-trigger", re.compile("."))  # polling stops
    expect(check_card.get_by_role("button", name="Re-check now")).to_be_enabled()
    assert page.evaluate("() => window.__sameDocument") == marker  # the verdict arrived without a reload
    shot("04-pass")

    # Raise the bar: the rule change is saved and a run with it is queued.
    check_card.get_by_role("link", name="Edit rule").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit the rule of Golden-set pass rate")
    expect(page.get_by_label("Threshold")).to_have_value("0.9")
    page.get_by_label("Threshold").fill("0.95")
    shot("05-edit-rule")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".message")).to_contain_text("a run with it is queued")
    expect(check_card).to_contain_text("pass_rate ≥ 0.95")
    expect(check_card.get_by_role("status")).to_have_text("Queued…")
    work_off(queued)
    expect(check_card.locator(".check-message")).to_contain_text("pass_rate 1 ≥ 0.95", timeout=POLL)
    expect(check_card.locator(".pill.ok")).to_have_text("Pass")

    # A new eval run regresses: replace the file, then "Re-check now" in place.
    card.get_by_role("link", name=re.compile("replace the file")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit Golden set (pytest)")
    page.get_by_label("Replace the file").set_input_files(str(FIXTURES / "junit-goldenset-regression.xml"))
    shot("06-replace-file")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".message")).to_contain_text("Saved Golden set (pytest)")
    expect(card).to_contain_text("junit-goldenset-regression.xml")
    assert not queued  # a new file waits for the next run
    expect(check_card.locator(".pill.ok")).to_have_text("Pass")  # the verdict still reflects the old file

    marker = page.evaluate("() => (window.__sameDocument = 'kept again')")
    check_card.get_by_role("button", name="Re-check now").click()
    expect(check_card.get_by_role("status")).to_have_text("Queued…")
    expect(check_card.get_by_role("button", name="Re-check now")).to_be_disabled()
    run = work_off(queued)
    assert run.verdict == Verdict.FAIL and run.is_regression
    expect(check_card.locator(".pill.no")).to_have_text("Fail · regression", timeout=POLL)
    expect(check_card.locator(".check-message")).to_contain_text("pass_rate 0.6875 < 0.95 — 11 of 16 cases passed")
    expect(check_card).to_contain_text("failing since")
    assert page.evaluate("() => window.__sameDocument") == marker
    assert [m.subject for m in mailoutbox] == [
        "[Preflight] Claims triage assistant: check “Golden-set pass rate” now fails"
    ]
    shot("07-fail")

    # The checklist's EV-03 line now says a check fails and why it blocks.
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Claims triage assistant").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Claims triage assistant")
    shot("08-pilot-top", full_page=False)
    line = page.locator("article.line[data-code='EV-03']")
    expect(line.locator(".check-failing")).to_have_text("✗ 1 check failing")
    expect(line.locator(".line-blocker")).to_contain_text("check “Golden-set pass rate” failing since")
    line.scroll_into_view_if_needed()
    shot("09-pilot-line", full_page=False)

    # A viewer finds the regression on the dashboard and follows it to the same verdicts,
    # with nothing to change them with.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        viewer = context.new_page()
        errors: list[str] = []
        viewer.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        viewer.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(viewer, live_server, "viewer")
        regressions = viewer.get_by_role("region", name="Regressions in the last 14 days")
        expect(regressions).to_contain_text("Still failing")
        expect(regressions).to_contain_text("“Golden-set pass rate” (EV-03) passed, then failed")
        Shot(viewer, shot.prefix)("10-viewer-dashboard", full_page=False)
        # The entry leads straight to the failing check's card.
        regressions.get_by_role("link", name="Claims triage assistant").click()
        expect(viewer).to_have_url(re.compile(rf"/systems/#check-{check.pk}$"))
        viewer_card = viewer.locator(f"#check-{check.pk}")
        expect(viewer_card.locator(".pill.no")).to_have_text("Fail · regression")
        expect(viewer_card.locator(".check-message")).to_contain_text("pass_rate 0.6875 < 0.95")
        expect(viewer.get_by_role("link", name="Edit rule")).to_have_count(0)
        expect(viewer.get_by_role("link", name=re.compile("Edit settings"))).to_have_count(0)
        expect(viewer.get_by_role("heading", name="Link a system")).to_have_count(0)
        expect(viewer.get_by_role("heading", name="Add a check")).to_have_count(0)
        expect(viewer.locator("input[type=file]")).to_have_count(0)
        Shot(viewer, shot.prefix)("11-viewer-systems")
        assert not errors, f"console errors for the viewer: {errors}"
    finally:
        context.close()
    assert not queued
