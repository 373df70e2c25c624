"""manage.py audit_verify [--org SLUG] [--checkpoint FILE] [--trusted-key ID]: exit 0 when intact, 1 with the
first break. Every checkpoint in the database and the anchor directory is checked, and the two are compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assessments.audit.verify import audit_verify, checkpoint_load
from assessments.organisations.models import Organisation


class Command(BaseCommand):
    help = "Verify the hash-chained audit trail (and stored evidence files) of one or every organisation."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="Organisation slug (default: every organisation)")
        parser.add_argument("--checkpoint", type=Path, help="A checkpoint JSON file kept outside the app")
        parser.add_argument(
            "--trusted-key",
            "--trusted-key-id",
            dest="trusted_keys",
            action="append",
            default=[],
            help="Also accept checkpoints signed by this key id (repeatable; AUDIT_TRUSTED_KEY_IDS is the setting)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        organisations = Organisation.objects.all()
        if options["org"]:
            organisations = organisations.filter(slug=options["org"])
            if not organisations.exists():
                raise CommandError(f"No organisation with slug '{options['org']}'.")
        try:
            checkpoint = checkpoint_load(options["checkpoint"]) if options["checkpoint"] else None
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        broken = 0
        for organisation in organisations:
            if checkpoint is not None and checkpoint.get("organisation") != organisation.slug:
                continue
            result = audit_verify(
                organisation=organisation, checkpoint=checkpoint, extra_trusted_key_ids=options["trusted_keys"]
            )
            if result.ok:
                self.stdout.write(
                    f"{organisation.slug}: intact — {result.events_checked} events, "
                    f"{result.files_checked} files, {result.checkpoints_checked} checkpoints, "
                    f"head #{result.head_sequence} {result.head_hash[:16]}…"
                )
            else:
                broken += 1
                problem = result.problem
                assert problem is not None
                self.stderr.write(
                    f"{organisation.slug}: BROKEN — first bad sequence {problem.sequence}: "
                    f"{problem.kind} ({problem.detail})"
                )
        if broken:
            raise SystemExit(1)
