"""Report rendering: a 50-criterion pilot report and a 200-pilot portfolio report, each
rendered by the sandboxed WeasyPrint (as the background job does) and, from the very same
HTML, by Chromium's headless print-to-PDF (the reference a user would otherwise pick).

    python benchmarks/reports.py [--pilots 200] [--runs 3]

Uses a throwaway SQLite file. Times are wall-clock medians over ``--runs`` (WeasyPrint as
the job runs it: in the sandbox's forked child; Chromium including its start-up). Peak
memory is measured separately in a fresh interpreter per engine, so nothing earlier
inflates it: WeasyPrint's peak resident set rendering the file in-process, and for
Chromium the largest of its processes (browser, renderer, GPU and utility processes each
have their own; their sum is higher).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def seed(pilots: int) -> int:
    """A 50-criterion pilot through the services (with evidence), then clones in bulk; returns its id."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from assessments.audit.context import Actor
    from assessments.frameworks.loader import FRAMEWORK_V1_PATH, framework_read_file
    from assessments.frameworks.models import Criterion
    from assessments.frameworks.services import framework_load
    from assessments.organisations.services import membership_grant, organisation_create, user_create
    from assessments.pilots.models import Assessment, Evidence, Pilot, Response
    from assessments.pilots.scorecache import scores_refresh
    from assessments.pilots.services import pilot_create

    call_command("migrate", verbosity=0)
    system = Actor.system("bench")
    org = organisation_create(name="Bench Organisation", slug="bench", actor=system)
    framework = framework_load(organisation=org, spec=framework_read_file(FRAMEWORK_V1_PATH), actor=system)
    # The default framework has 47 criteria: three more make the 50 the brief measures.
    gaps = list(framework.gaps.order_by("order"))
    for n in range(50 - framework.criteria.count()):
        Criterion.objects.create(
            framework=framework, gap=gaps[n % len(gaps)], code=f"BX-{n + 1:02d}", order=90 + n,
            title=f"Benchmark criterion {n + 1}", guidance="Guidance.", cost_if_missing="Cost.",
            severity_minimal="major", severity_limited="major", severity_high="major",
            evidence_expected="Evidence.",
        )  # fmt: skip
    assert framework.criteria.count() == 50
    owner = user_create(organisation=org, username="owner", email="o@b.test", password="pw", actor=system)
    membership_grant(organisation=org, user=owner, role="owner", actor=system)
    actor = Actor.for_user(owner)
    main = pilot_create(
        organisation=org, actor=actor, name="Benchmark pilot", technical_owner=owner, value_metric_name="Minutes saved"
    )
    assessment = Assessment.objects.get(pilot=main)
    responses = list(Response.objects.filter(assessment=assessment).order_by("pk"))
    today = timezone.localdate()
    for i, response in enumerate(responses):
        response.status = ["met", "met", "partly_met", "not_met"][i % 4]
        response.owner = owner
    Response.objects.bulk_update(responses, ["status", "owner"])
    Evidence.objects.bulk_create(
        Evidence(
            response=responses[i % len(responses)], kind="link", title=f"Evidence item {i}",
            url=f"https://e.test/{i}", effective_date=today - dt.timedelta(days=i % 200), added_by=owner,
        )
        for i in range(150)
    )  # fmt: skip
    criteria = list(framework.criteria.all())
    for start in range(1, pilots, 100):
        made = Pilot.objects.bulk_create(
            Pilot(
                organisation=org, name=f"Pilot {n:04d}", slug=f"pilot-{n:04d}", technical_owner=owner,
                stage=("pilot", "candidate", "production")[n % 3],
            )
            for n in range(start, min(pilots, start + 100))
        )  # fmt: skip
        assessments = Assessment.objects.bulk_create(Assessment(pilot=p, framework=framework) for p in made)
        Response.objects.bulk_create(
            Response(assessment=a, criterion=c, status=["met", "not_met", "partly_met", "met"][(a.pk + c.pk) % 4])
            for a in assessments
            for c in criteria
        )
        scores_refresh(assessment_ids=[a.pk for a in assessments], today=today)
    assert Pilot.objects.filter(organisation=org).count() == pilots
    return main.pk


def standalone(html: str) -> str:
    """The same HTML with its stylesheet inlined, so both engines read exactly the same bytes."""
    css = (ROOT / "static" / "css" / "report.css").read_text()
    return re.sub(r'<link rel="stylesheet" href="[^"]*report\.css">', lambda _m: f"<style>{css}</style>", html)


WEASYPRINT_PEAK = """
import resource, sys, weasyprint
weasyprint.HTML(filename=sys.argv[1]).write_pdf()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
CHROMIUM_PEAK = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True, timeout=120)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_mb(code: str, *argv: str) -> float:
    """Peak resident MB measured inside a fresh interpreter, so no earlier run or parent inflates it."""
    out = subprocess.run([sys.executable, "-c", code, *argv], check=True, capture_output=True, text=True, timeout=300)
    return int(out.stdout.split()[-1]) / 1024


def weasyprint_run(html: str, runs: int, tmp: Path) -> tuple[float, float, int]:
    from assessments.reports.sandbox import pdf_render

    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        size = len(pdf_render(html))
        times.append(time.perf_counter() - started)
    page = tmp / "weasy.html"
    page.write_text(html)
    return statistics.median(times), peak_mb(WEASYPRINT_PEAK, str(page)), size


def chromium_run(html: str, runs: int, tmp: Path) -> tuple[float, float, int]:
    page = tmp / "page.html"
    page.write_text(html)
    out = tmp / "chromium.pdf"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
        f"--user-data-dir={tmp / 'profile'}", f"--print-to-pdf={out}", page.as_uri(),
    ]  # fmt: skip
    times = []
    for _ in range(runs):
        out.unlink(missing_ok=True)
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times), peak_mb(CHROMIUM_PEAK, *command), out.stat().st_size


def pages_of(pdf: bytes, tmp: Path) -> int:
    path = tmp / "count.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    return int(next((line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")), "0"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilots", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="preflight-bench-reports-") as name:
        tmp = Path(name)
        os.environ.pop("DATABASE_URL", None)
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'reports.sqlite3'}"
        os.environ["MEDIA_ROOT"] = str(tmp / "media")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")
        print(f"seeding {args.pilots} pilots (the first with 50 criteria and 150 evidence items) ...", flush=True)
        pilot_id = seed(args.pilots)

        from django.template.loader import render_to_string

        from assessments.pilots.models import Pilot
        from assessments.reports.pilot_report import pilot_report_html
        from assessments.reports.portfolio import portfolio_context
        from assessments.reports.sandbox import pdf_render

        pilot = Pilot.objects.select_related("organisation").get(pk=pilot_id)
        started = time.perf_counter()
        pilot_html = standalone(pilot_report_html(pilot=pilot))
        pilot_html_s = time.perf_counter() - started
        started = time.perf_counter()
        context = {**portfolio_context(organisation=pilot.organisation), "pdf": True}
        portfolio_html = standalone(render_to_string("reports/portfolio_pdf.html", context))
        portfolio_html_s = time.perf_counter() - started
        pdf_render("<p>warm-up</p>")  # imports and font discovery, once per worker process
        print()
        print(f"{'report':<28}{'engine':<34}{'median s':>10}{'peak MB':>10}{'pages':>7}{'KB':>8}")
        for label, html, html_s in (
            ("pilot, 50 criteria", pilot_html, pilot_html_s),
            (f"portfolio, {args.pilots} pilots", portfolio_html, portfolio_html_s),
        ):
            seconds, peak, _size = weasyprint_run(html, args.runs, tmp)
            pdf = pdf_render(html)
            print(
                f"{label:<28}{'WeasyPrint (sandboxed child)':<34}{seconds:>10.2f}{peak:>10.0f}"
                f"{pages_of(pdf, tmp):>7}{len(pdf) / 1024:>8.0f}"
            )
            print(f"{'':<28}{'  + HTML from the database':<34}{html_s:>10.2f}")
            if Path(CHROMIUM).exists():
                c_seconds, c_peak, c_size = chromium_run(html, args.runs, tmp)
                c_pdf = (tmp / "chromium.pdf").read_bytes()
                print(
                    f"{'':<28}{'Chromium --print-to-pdf':<34}{c_seconds:>10.2f}{c_peak:>10.0f}"
                    f"{pages_of(c_pdf, tmp):>7}{c_size / 1024:>8.0f}"
                )
            else:
                print(f"{'':<28}Chromium not installed at {CHROMIUM}: no reference figure")


if __name__ == "__main__":
    main()
