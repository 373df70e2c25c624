"""The WeasyPrint sandbox: hostile markup and user text fetch nothing, leak nothing, embed nothing."""

from __future__ import annotations

import datetime as dt
import http.server
import subprocess
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from assessments.pilots.models import Response
from assessments.pilots.services import evidence_add, pilot_create, stop_condition_add
from assessments.reports.models import ReportKind, ReportStatus
from assessments.reports.sandbox import BASE_URL, FetchRefused, RenderError, _make_fetcher, _static_roots, pdf_render
from assessments.reports.services import report_render_execute, report_request

PASSWD = Path("/etc/passwd")
SECRET_ENV = "PREFLIGHT_CANARY_SECRET"
SECRET_VALUE = "canary-secret-7f3a9c"


class Canary:
    """An HTTP server on 127.0.0.1 that counts every request made to it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canary.hits.append(self.path)
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Canary:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    with Canary() as server:
        yield server


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def _assert_inert(pdf: bytes, tmp_path: Path, canary: Canary, settings) -> str:
    assert canary.hits == []
    for marker in (b"/JavaScript", b"/JS ", b"/Launch", b"/EmbeddedFile", b"/URI (file:", b"/SubmitForm"):
        assert marker not in pdf, marker
    text = _text(pdf, tmp_path)
    first_line = PASSWD.read_text().splitlines()[0]
    assert first_line not in text
    assert first_line.encode() not in pdf
    assert settings.SECRET_KEY not in text
    assert SECRET_VALUE not in text
    return text


def _hostile(canary: Canary) -> str:
    return f"""<!doctype html><html><head>
    <link rel="stylesheet" href="{canary.url}/sheet.css">
    <style>@import url("{canary.url}/import.css"); body {{ background: url("{canary.url}/bg.png"); }}
    @font-face {{ font-family: X; src: url("{canary.url}/font.woff"); }}</style>
    <link rel="attachment" href="file:///etc/passwd" title="passwd">
    <link rel=attachment href="{canary.url}/attach">
    </head><body>
    <h1>Hostile document</h1>
    <img src="file:///etc/passwd"><img src="{canary.url}/img.png"><img src="/static/../../../../etc/passwd">
    <img src="/static/%2e%2e/%2e%2e/etc/passwd"><img src="https://preflight.invalid/static/../settings.py">
    <a rel="attachment" href="file:///etc/passwd">attached</a>
    <object data="file:///etc/passwd"></object><embed src="file:///etc/passwd"><iframe src="file:///etc/passwd"></iframe>
    <div style="background-image: url(file:///etc/passwd)">css</div>
    <svg><image href="file:///etc/passwd" width="10" height="10"/></svg>
    <script>app.alert("x")</script>
    </body></html>"""


def test_hostile_markup_fetches_nothing_and_embeds_nothing(canary, tmp_path, settings, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET_VALUE)
    pdf = pdf_render(_hostile(canary))
    assert pdf.startswith(b"%PDF")
    text = _assert_inert(pdf, tmp_path, canary, settings)
    assert "Hostile document" in text


def test_the_fetcher_serves_static_files_and_data_uris_only():
    fetch = _make_fetcher(_static_roots())
    css = fetch(f"{BASE_URL}static/css/report.css")
    assert b"@page" in css.read()
    assert fetch("data:text/plain;base64,aGk=").read() == b"hi"
    for url in (
        "file:///etc/passwd",
        "http://127.0.0.1/",
        "https://example.com/static/css/report.css",
        f"{BASE_URL}static/../readiness/settings.py",
        f"{BASE_URL}static/%2e%2e/readiness/settings.py",
        f"{BASE_URL}media/evidence/x.pdf",
        f"{BASE_URL}static/css/report.css?x=1",
        "ftp://example.com/x",
    ):
        with pytest.raises(FetchRefused):
            fetch(url)


def test_a_render_that_runs_too_long_is_stopped(settings):
    settings.REPORT_RENDER_TIMEOUT = 1
    rows = "".join(f"<tr><td>{i}</td><td>{'word ' * 30}</td></tr>" for i in range(20000))
    with pytest.raises(RenderError, match="longer than 1 seconds"):
        pdf_render(f"<table>{rows}</table>")


def test_a_render_that_needs_too_much_memory_is_stopped(settings):
    settings.REPORT_RENDER_MAX_MEMORY = 30 * 1024 * 1024
    settings.REPORT_RENDER_TIMEOUT = 60
    rows = "".join(f"<tr><td>{i}</td><td>{'word ' * 30}</td></tr>" for i in range(20000))
    with pytest.raises(RenderError):
        pdf_render(f"<table>{rows}</table>")


def test_another_base_url_is_refused():
    with pytest.raises(RenderError):
        pdf_render("<p>x</p>", base_url="file:///")


@pytest.mark.django_db
def test_user_text_comes_out_literally_and_fetches_nothing(framework, users, owner_actor, canary, tmp_path, settings):
    """Markup, CSS, attachments and template syntax typed into user fields are text, never code."""
    name = f'<img src="file:///etc/passwd"> {{{{ settings.SECRET_KEY }}}} <link rel=attachment href="{canary.url}/a">'
    pilot = pilot_create(
        organisation=framework.organisation,
        actor=owner_actor,
        name=name[:200],
        risk_tier="limited",
        technical_owner=users["owner"],
        value_metric_name="{% debug %}",
    )
    stop_condition_add(
        pilot=pilot,
        actor=owner_actor,
        condition=f'<div style="background:url({canary.url}/css)">{{% include "/etc/passwd" %}}</div>',
        metric="x",
        comparator="gt",
        threshold=Decimal(1),
    )
    response = Response.objects.filter(assessment__pilot=pilot).order_by("pk")[0]
    evidence_add(
        response=response,
        actor=owner_actor,
        kind="link",
        title=f"<style>@import url({canary.url}/i.css)</style>{{{{ request }}}}",
        url=f"{canary.url}/evidence",
        effective_date=dt.date.today() - dt.timedelta(days=1),
    )
    report = report_request(kind=ReportKind.PILOT, pilot=pilot, actor=owner_actor)
    report = report_render_execute(report_id=report.pk)
    assert report is not None and report.status == ReportStatus.DONE, report and report.error
    with report.file.open("rb") as handle:
        pdf = handle.read()
    # Lines wrap wherever the layout likes, so compare without spaces.
    text = "".join(_assert_inert(pdf, tmp_path, canary, settings).split())
    for literal in (
        "{{ settings.SECRET_KEY }}",
        '<img src="file:///etc/passwd">',
        "<link rel=attachment href=",
        "{% debug %}",
        '{% include "/etc/passwd" %}',
        "{{ request }}",
        "<style>@import url(",
        "background:url(",
    ):
        assert "".join(literal.split()) in text, literal
