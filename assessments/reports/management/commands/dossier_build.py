"""Build a pilot's auditor's dossier from a shell.

``manage.py dossier_build --pilot ID|SLUG [--org SLUG] --out FILE [--no-report] [--size-limit BYTES]``.
Renders a fresh pilot report (recorded and audited like one asked for in the app),
then signs a checkpoint over the chain as it now stands (after verifying it), so
the dossier's events reach the report's own audit event, and writes the zip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assessments.audit.checkpoints import checkpoint_sign
from assessments.audit.context import Actor
from assessments.audit.signing import SigningKeyMissing
from assessments.pilots.models import Pilot
from assessments.reports.dossier import SIZE_LIMIT, DossierError, dossier_build
from assessments.reports.models import ReportKind, ReportStatus
from assessments.reports.renderers import RendererMissing, renderer_for
from assessments.reports.services import report_render_execute, report_request


def _pilot(value: str, organisation: str) -> Pilot:
    pilots = Pilot.objects.select_related("organisation")
    pilots = pilots.filter(pk=int(value)) if value.isdigit() else pilots.filter(slug=value)
    if organisation:
        pilots = pilots.filter(organisation__slug=organisation)
    found = list(pilots[:2])
    if not found:
        raise CommandError(f"No pilot {value!r}.")
    if len(found) > 1:
        raise CommandError(f"Several organisations have a pilot {value!r}; name one with --org.")
    return found[0]


def _report_pdf(pilot: Pilot) -> bytes | None:
    """A freshly rendered pilot report, or None when this installation has no pilot-report renderer."""
    try:
        renderer_for(ReportKind.PILOT)
    except RendererMissing:
        return None
    report = report_request(
        kind=ReportKind.PILOT, pilot=pilot, actor=Actor.system("dossier_build command"), enqueue=False
    )
    done = report_render_execute(report_id=report.pk)
    if done is None or done.status != ReportStatus.DONE:
        raise CommandError(f"The pilot report R-{report.pk} failed: {done.error if done else 'not rendered'}")
    with done.file.open("rb") as handle:
        return handle.read()


class Command(BaseCommand):
    help = "Build a pilot's auditor's dossier (zip) that an outsider verifies offline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pilot", required=True, help="The pilot's id or slug.")
        parser.add_argument("--org", default="", help="The organisation's slug, if the pilot slug is not unique.")
        parser.add_argument("--out", required=True, type=Path, help="Where to write the zip.")
        parser.add_argument("--no-report", action="store_true", help="Leave the PDF report out.")
        parser.add_argument(
            "--size-limit",
            type=int,
            default=SIZE_LIMIT,
            help=f"Evidence files above this many bytes are listed, not included (default {SIZE_LIMIT}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        pilot = _pilot(options["pilot"], options["org"])
        pdf = None if options["no_report"] else _report_pdf(pilot)
        try:
            outcome = checkpoint_sign(organisation=pilot.organisation)
        except SigningKeyMissing as exc:
            raise CommandError(str(exc)) from exc
        if outcome.checkpoint is None and outcome.verification is not None and not outcome.verification.ok:
            raise CommandError(f"Not building a dossier over a broken chain: {outcome.skipped}")
        out: Path = options["out"]
        try:
            with out.open("wb") as handle:
                built = dossier_build(pilot=pilot, pdf=pdf, out=handle, size_limit=options["size_limit"])
        except DossierError as exc:
            out.unlink(missing_ok=True)
            raise CommandError(str(exc)) from exc
        report = "with the PDF report" if built.report_included else "without a PDF report"
        self.stdout.write(
            f"{out}: {built.events} events to checkpoint #{built.checkpoint_sequence}, {report}, "
            f"{built.files_included} evidence files included, {built.files_listed} listed; "
            f"key id {built.key_id}; verify with: python verify_audit_export.py --dossier {out.name} "
            f"--trusted-key {built.key_id}"
        )
