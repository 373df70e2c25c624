"""Render a pilot's readiness report from a shell, as the background job would.

``manage.py report_render --pilot SLUG [--org SLUG] --out FILE``. A pilot is identified by
its slug, which is unique within its organisation; ``--org`` is needed only when two
organisations use the same slug. The report is recorded (and audited) like one asked for
in the app, then rendered here rather than by a worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assessments.audit.context import Actor
from assessments.pilots.models import Pilot
from assessments.reports.models import ReportKind, ReportStatus
from assessments.reports.services import report_render_execute, report_request


class Command(BaseCommand):
    help = "Render a pilot's readiness report (PDF) to a file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pilot", required=True, help="The pilot's slug.")
        parser.add_argument("--org", default="", help="The organisation's slug, if the pilot slug is not unique.")
        parser.add_argument("--out", required=True, help="Where to write the PDF.")

    def handle(self, *args: Any, **options: Any) -> None:
        pilots = Pilot.objects.filter(slug=options["pilot"]).select_related("organisation")
        if options["org"]:
            pilots = pilots.filter(organisation__slug=options["org"])
        found = list(pilots[:2])
        if not found:
            raise CommandError(f"No pilot with the slug {options['pilot']!r}.")
        if len(found) > 1:
            raise CommandError(f"Several organisations have a pilot {options['pilot']!r}; name one with --org.")
        report = report_request(
            kind=ReportKind.PILOT, pilot=found[0], actor=Actor.system("report_render command"), enqueue=False
        )
        done = report_render_execute(report_id=report.pk)
        if done is None or done.status != ReportStatus.DONE:
            raise CommandError(f"Report R-{report.pk} failed: {done.error if done else 'not rendered'}")
        out = Path(options["out"])
        with done.file.open("rb") as handle:
            out.write_bytes(handle.read())
        self.stdout.write(f"R-{done.pk}: {out} ({done.size} bytes, sha256 {done.sha256})")
