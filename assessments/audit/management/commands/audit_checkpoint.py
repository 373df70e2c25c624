"""manage.py audit_checkpoint [--org SLUG]: verify, then sign, timestamp and anchor the chain head(s)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assessments.audit.anchor import anchor_dir
from assessments.audit.checkpoints import checkpoint_sign
from assessments.audit.signing import SigningKeyMissing
from assessments.organisations.models import Organisation


class Command(BaseCommand):
    help = "Verify each organisation's audit chain and sign its head with the Ed25519 checkpoint key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="Organisation slug (default: every organisation)")

    def handle(self, *args: Any, **options: Any) -> None:
        organisations = Organisation.objects.all()
        if options["org"]:
            organisations = organisations.filter(slug=options["org"])
            if not organisations.exists():
                raise CommandError(f"No organisation with slug '{options['org']}'.")
        broken = 0
        for organisation in organisations:
            try:
                outcome = checkpoint_sign(organisation=organisation, full_verification=True, only_if_new=False)
            except SigningKeyMissing as exc:
                raise CommandError(str(exc)) from exc
            checkpoint = outcome.checkpoint
            if checkpoint is None:
                broken += outcome.verification is not None and not outcome.verification.ok
                self.stderr.write(f"{organisation.slug}: not signed — {outcome.skipped}")
                continue
            stamp = checkpoint.get_timestamp_status_display().lower()
            if checkpoint.timestamp_error:
                stamp += f": {checkpoint.timestamp_error}"
            anchored = checkpoint.get_anchor_status_display().lower()
            if checkpoint.anchor_error:
                anchored += f": {checkpoint.anchor_error}"
            self.stdout.write(
                f"{organisation.slug}: signed head #{checkpoint.sequence} {checkpoint.head_hash[:16]}… "
                f"(key {checkpoint.key_id[:16]}…); {stamp}; {anchored} in {anchor_dir()}"
            )
        if broken:
            raise SystemExit(1)
