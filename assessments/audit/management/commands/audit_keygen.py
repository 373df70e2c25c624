"""manage.py audit_keygen: create the Ed25519 checkpoint key if there is none."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from assessments.audit.signing import key_id, signing_key_ensure, signing_key_load


class Command(BaseCommand):
    help = "Create the audit checkpoint signing key (kept if it already exists) and print its key id."

    def handle(self, *args: Any, **options: Any) -> None:
        path = signing_key_ensure()
        self.stdout.write(f"Checkpoint key {path} — key id {key_id(signing_key_load(path).public_key())}")
