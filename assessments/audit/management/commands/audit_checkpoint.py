"""manage.py audit_checkpoint [--org SLUG]: sign the chain head(s) and write checkpoint files."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from assessments.audit.signing import SigningKeyMissing
from assessments.audit.verify import checkpoint_create
from assessments.organisations.models import Organisation


class Command(BaseCommand):
    help = "Sign each organisation's audit-chain head with the Ed25519 checkpoint key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="Organisation slug (default: every organisation)")

    def handle(self, *args: Any, **options: Any) -> None:
        organisations = Organisation.objects.all()
        if options["org"]:
            organisations = organisations.filter(slug=options["org"])
            if not organisations.exists():
                raise CommandError(f"No organisation with slug '{options['org']}'.")
        for organisation in organisations:
            try:
                checkpoint = checkpoint_create(organisation=organisation)
            except SigningKeyMissing as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"{organisation.slug}: signed head #{checkpoint.sequence} {checkpoint.head_hash[:16]}… "
                f"(key {checkpoint.key_id[:16]}…) → {settings.AUDIT_CHECKPOINT_DIR}"
            )
