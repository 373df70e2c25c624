"""Re-encrypt every linked system's credentials and every alert webhook with the newest key.

Run after putting a new key first in CREDENTIALS_KEYS; then the old key can be removed.
Re-encryption changes no secret, so it records no audit event; it prints what it did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import QuerySet

from assessments.evidence.credentials import CredentialsError, credentials_reencrypt
from assessments.evidence.models import AlertWebhook, LinkedSystem


class Command(BaseCommand):
    help = "Re-encrypt linked systems' credentials with the newest key in CREDENTIALS_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        failed: list[str] = []
        systems = _reencrypt_all(
            LinkedSystem.objects.exclude(credentials=""), "credentials", lambda s: f"{s.pk} ({s.name})", failed
        )
        webhooks = _reencrypt_all(
            AlertWebhook.objects.all(),
            "url_ciphertext",
            lambda w: f"the alert webhook of organisation {w.organisation_id}",
            failed,
        )
        self.stdout.write(
            f"Re-encrypted the credentials of {systems} linked system(s) and {webhooks} alert webhook(s)."
        )
        if failed:
            raise CommandError(
                "No configured key decrypts the credentials of: " + ", ".join(failed) + ". Keep the old key in "
                "CREDENTIALS_KEYS until these are re-entered."
            )


def _reencrypt_all(rows: QuerySet[Any], field: str, named: Callable[[Any], str], failed: list[str]) -> int:
    """Re-encrypt ``field`` of each row, one locked row at a time; returns how many were done."""
    done = 0
    for pk in rows.values_list("pk", flat=True):
        with transaction.atomic():
            row = rows.model.objects.select_for_update().get(pk=pk)
            try:
                setattr(row, field, credentials_reencrypt(ciphertext=getattr(row, field)))
            except CredentialsError:
                failed.append(named(row))
                continue
            row.save(update_fields=[field])
            done += 1
    return done
