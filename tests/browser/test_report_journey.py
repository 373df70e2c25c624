"""The reports room in real Chromium: a readiness report asked for from the pilot page, its line
polling from pending through rendering to ready, the PDF downloaded and read back; the portfolio
page and its charts; the statement-of-work preamble edited with hostile text that comes back
literally in the page, the Markdown and the Word file; and the dossier offered only to
administrators and risk.

The test plays the Celery worker: the app's enqueue is caught, and the test renders the row
with the real service (claim, sandboxed WeasyPrint, store), so the page has to pick each
status up by polling, as it would from a real worker.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import markdown
import pytest
from docx import Document
from playwright.sync_api import Browser, Dialog, Page, expect

from assessments.pilots.models import Pilot
from assessments.pilots.services import pilot_create, stop_condition_add
from assessments.reports import renderers, tasks
from assessments.reports.models import Report, ReportKind, ReportStatus, SowText
from assessments.reports.services import report_render_execute
from tests.browser.conftest import ARTIFACTS, Shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-only"
POLL = 8_000  # ms: a line polls every 2 s; leave room for a slow CI machine
PILOT = "Claims triage & refunds"
# What a hostile editor types: markup, a template tag, a Markdown heading, link and table row.
HOSTILE = [
    "<script>alert(1)</script>{{ 7*7 }}",
    "# Not a heading",
    "[click me](javascript:alert(2)) | a | b |",
]
SHOTS = Path(os.environ.get("REPORT_JOURNEY_SHOTS", str(ARTIFACTS)))


class JourneyShot(Shot):
    """The house screenshot helper, writing where REPORT_JOURNEY_SHOTS says (else the artefacts)."""

    def __call__(self, name: str, *, full_page: bool = True) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.prefix}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
        return path


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    pilot = pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name=PILOT,
        technical_owner=users["owner"],
        risk_tier="limited",
    )
    stop_condition_add(
        pilot=pilot,
        actor=owner_actor,
        condition="Pause if wrongful refusals exceed 1%",
        metric="wrongful refusal rate",
        comparator="gt",
        threshold=Decimal("0.01"),
    )
    return pilot


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Report ids the app enqueues, in order, instead of sending them to the broker."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.report_render, "delay", ids.append)
    return ids


def sign_in(page: Page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("AI pilots")


def kind_options(page: Page) -> list[str]:
    return [text.strip() for text in page.get_by_label("Kind").locator("option").all_inner_texts()]


def show_kinds(page: Page) -> None:
    """Open the Kind list out in place, so a screenshot shows every option offered."""
    page.get_by_label("Kind").evaluate("select => { select.size = select.options.length; }")


def download(page: Page, link_name: str, target: Path) -> Path:
    with page.expect_download() as info:
        page.get_by_role("link", name=link_name).click()
    info.value.save_as(target)
    return target


def test_an_owner_gets_a_report_sees_the_portfolio_and_a_hostile_preamble_stays_text(
    page: Page, live_server, users, pilot: Pilot, queued: list[int], monkeypatch, tmp_path: Path, request
) -> None:
    shot = JourneyShot(page, request.node.name)
    dialogs: list[str] = []

    def dismissed(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismissed)

    # The owner opens the pilot and its reports panel.
    sign_in(page, live_server, "owner")
    page.get_by_role("link", name=PILOT).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(PILOT)
    page.get_by_role("link", name="Reports (PDF)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Reports: {PILOT}")
    expect(page.get_by_text("No reports yet.")).to_be_visible()
    assert "Auditor's dossier (zip)" not in kind_options(page)  # an owner builds no dossier
    shot("01-reports-empty")

    # Asking for a readiness report writes a pending row and queues one job.
    page.get_by_label("Kind").select_option(ReportKind.PILOT)
    page.get_by_role("button", name="Request").click()
    expect(page.locator(".message")).to_contain_text("Report requested")
    report = Report.objects.get()
    assert queued == [report.pk] and report.status == ReportStatus.PENDING
    line = page.locator(f"#report-{report.pk}")
    expect(line).to_contain_text("Waiting to start")
    expect(line).to_have_attribute("hx-trigger", "every 2s")
    shot("02-pending")

    # The test is the worker. Mid-render, the line has polled its way to "Rendering".
    real = renderers.renderer_for(ReportKind.PILOT)

    def watched(row: Report) -> renderers.Rendered:
        expect(line).to_contain_text("Rendering", timeout=POLL)
        shot("03-running")
        return real(row)

    monkeypatch.setitem(renderers._REGISTRY, ReportKind.PILOT, watched)
    done = report_render_execute(report_id=queued.pop())
    assert done is not None and done.status == ReportStatus.DONE, done and done.error

    # ...and then to "Ready", with a download link, and it stops polling.
    expect(line).to_contain_text("Ready", timeout=POLL)
    expect(line.get_by_role("link", name="Download")).to_be_visible()
    expect(line).not_to_have_attribute("hx-trigger", re.compile(".*"))
    shot("04-ready")
    pdf = download(page, "Download", tmp_path / "rj-report.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    text = " ".join(
        subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split()
    )
    assert PILOT in text and f"R-{report.pk}" in text and "NOT READY for production" in text

    # The portfolio page draws its three charts.
    page.goto(f"{live_server.url}/reports/portfolio/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Portfolio report: Acme Bank")
    charts = page.locator(".report-charts figure svg")
    expect(charts).to_have_count(3)
    for index in range(3):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50, box
    expect(page.locator("#pilots")).to_contain_text(PILOT)
    shot("05-portfolio")

    # The SOW page: the owner edits the preamble with hostile text.
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    page.get_by_role("link", name="Readiness definition (SOW)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Production-readiness definition")
    shot("06-sow")
    page.get_by_role("link", name="Edit preamble and scope").click()
    page.get_by_label("Preamble").fill("\n".join(HOSTILE))
    shot("07-sow-edit")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".message")).to_contain_text("Preamble and scope saved.")
    # A browser submits a textarea's line breaks as CRLF; the text itself is kept as typed.
    assert SowText.objects.get(pilot=pilot).preamble.splitlines() == HOSTILE
    preamble = page.locator(".prose").first
    for line_text in HOSTILE:
        expect(preamble).to_contain_text(line_text)
    assert preamble.locator("script, a, h1, h2, h3, table").count() == 0
    shot("08-sow-saved")

    # Markdown: the raw file carries no markup, and rendered it shows the text as typed.
    raw = download(page, "Download Markdown", tmp_path / "rj-sow.md").read_text()
    assert "<script" not in raw and "{{" not in raw
    rendered = markdown.markdown(raw, extensions=["tables"])
    assert "<script" not in rendered and "<a " not in rendered and "<table" not in rendered
    assert rendered.count("<h1>") == 1  # the document's own title, not the preamble's "#"
    visible = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    for line_text in HOSTILE:
        assert line_text in visible, line_text
    assert PILOT in visible

    # Word: plain runs, the text exactly as typed, no hyperlink or field.
    docx = download(page, "Download Word", tmp_path / "rj-sow.docx")
    paragraphs = [p.text for p in Document(io.BytesIO(docx.read_bytes())).paragraphs]
    assert "\n".join(HOSTILE) in paragraphs
    assert paragraphs[0] == f"Production-readiness definition: {PILOT}"
    assert dialogs == []  # no script ran anywhere on the way


def test_only_administrators_and_risk_are_offered_the_dossier(
    page: Page, browser: Browser, live_server, users, pilot: Pilot, queued: list[int], request
) -> None:
    shot = JourneyShot(page, request.node.name)
    sign_in(page, live_server, "viewer")
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/reports/")
    options = kind_options(page)
    assert "Pilot readiness report (PDF)" in options and "Auditor's dossier (zip)" not in options
    show_kinds(page)
    shot("viewer-no-dossier")

    # The control is not just hidden: a forged request with a valid CSRF token is refused.
    token = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")["X-CSRFToken"]
    forged = page.request.post(
        f"{live_server.url}/pilots/{pilot.pk}/reports/new/",
        form={"kind": ReportKind.DOSSIER},
        headers={"X-CSRFToken": token, "Referer": f"{live_server.url}/"},
        max_redirects=0,
    )
    assert forged.status == 403 and "whole audit trail" in forged.text()  # the service's refusal, not CSRF's
    assert not Report.objects.exists() and queued == []

    # The viewer reads the definition but is offered no editor.
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/sow/")
    expect(page.get_by_role("link", name="Download Markdown")).to_be_visible()
    expect(page.get_by_role("link", name="Edit preamble and scope")).to_have_count(0)

    contexts = []
    for role, offered in (("owner", False), ("risk", True), ("admin", True)):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        tab = context.new_page()
        sign_in(tab, live_server, role)
        tab.goto(f"{live_server.url}/pilots/{pilot.pk}/reports/")
        assert ("Auditor's dossier (zip)" in kind_options(tab)) is offered, role
        if role == "risk":
            show_kinds(tab)
            JourneyShot(tab, request.node.name)("risk-offered-dossier")
    for context in contexts:
        context.close()
