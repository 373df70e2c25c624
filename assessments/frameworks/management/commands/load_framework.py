"""manage.py load_framework FILE --org SLUG [--draft]: load a framework file, or explain why not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from assessments.audit.context import Actor
from assessments.frameworks.loader import FrameworkFileError, framework_read_file
from assessments.frameworks.services import framework_load
from assessments.organisations.models import Organisation


class Command(BaseCommand):
    help = "Load a readiness framework from a JSON file into an organisation. Nothing changes if the file is invalid."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--org", required=True, help="Organisation slug")
        parser.add_argument("--draft", action="store_true", help="Load as an editable draft instead of published")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organisation = Organisation.objects.get(slug=options["org"])
        except Organisation.DoesNotExist as exc:
            raise CommandError(f"No organisation with slug '{options['org']}'.") from exc
        try:
            spec = framework_read_file(options["file"])
        except FrameworkFileError as exc:
            lines = "\n".join(f"  - {problem}" for problem in exc.problems)
            raise CommandError(f"{options['file']} was not loaded; nothing changed:\n{lines}") from exc
        try:
            framework = framework_load(
                organisation=organisation,
                spec=spec,
                actor=Actor.system("load_framework"),
                publish=not options["draft"],
            )
        except ValidationError as exc:
            raise CommandError(f"{options['file']} was not loaded; nothing changed: {' '.join(exc.messages)}") from exc
        self.stdout.write(
            f"{framework} ({framework.get_status_display()}): {framework.gaps.count()} gaps, "
            f"{framework.criteria.count()} criteria"
        )
