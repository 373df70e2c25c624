"""manage.py audit_export --org SLUG --out events.jsonl: the chain for outside verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assessments.audit.verify import audit_export
from assessments.organisations.models import Organisation


class Command(BaseCommand):
    help = "Export an organisation's audit chain as JSON Lines for tools/verify_audit_export.py."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--out", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        organisation = Organisation.objects.filter(slug=options["org"]).first()
        if organisation is None:
            raise CommandError(f"No organisation with slug '{options['org']}'.")
        with options["out"].open("wb") as handle:
            count = audit_export(organisation=organisation, out=handle)
        self.stdout.write(f"Wrote {count} events to {options['out']}")
