"""manage.py sow_render: write a pilot's statement-of-work readiness definition to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assessments.pilots.models import Pilot
from assessments.reports.sow import RENDERERS, SowUnavailable


class Command(BaseCommand):
    help = "Render a pilot's production-readiness definition as Markdown, Word or PDF."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pilot", required=True, help="the pilot's id or slug")
        parser.add_argument("--org", help="the organisation's slug, when several have a pilot with that slug")
        parser.add_argument("--format", required=True, choices=sorted(RENDERERS), dest="fmt")
        parser.add_argument("--out", required=True, type=Path, help="the file to write")

    def _pilot(self, key: str, org: str | None) -> Pilot:
        pilots = Pilot.objects.select_related("organisation")
        if org:
            pilots = pilots.filter(organisation__slug=org)
        found = list(pilots.filter(pk=int(key)) if key.isdigit() else pilots.filter(slug=key))
        if not found:
            raise CommandError(f"No pilot {key!r}" + (f" in organisation {org!r}." if org else "."))
        if len(found) > 1:
            orgs = ", ".join(sorted(p.organisation.slug for p in found))
            raise CommandError(f"Several organisations have a pilot {key!r} ({orgs}); name one with --org.")
        return found[0]

    def handle(self, *args: Any, **options: Any) -> None:
        pilot = self._pilot(options["pilot"], options["org"])
        try:
            content, _, _ = RENDERERS[options["fmt"]](pilot)
        except SowUnavailable as exc:
            raise CommandError(str(exc)) from exc
        out: Path = options["out"]
        out.write_bytes(content)
        self.stderr.write(f"Wrote {len(content):,} bytes to {out}.")
