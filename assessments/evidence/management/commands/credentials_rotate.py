"""Re-encrypt every linked system's credentials and every alert webhook with the newest key.

Run after putting a new key first in CREDENTIALS_KEYS; then the old key can be removed.
Re-encryption changes no secret, so it records no audit event; it prints what it did.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from assessments.evidence.credentials import CredentialsError, credentials_reencrypt
from assessments.evidence.models import AlertWebhook, LinkedSystem


class Command(BaseCommand):
    help = "Re-encrypt linked systems' credentials with the newest key in CREDENTIALS_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        done = 0
        failed: list[str] = []
        for pk in LinkedSystem.objects.exclude(credentials="").values_list("pk", flat=True):
            with transaction.atomic():
                system = LinkedSystem.objects.select_for_update().get(pk=pk)
                try:
                    system.credentials = credentials_reencrypt(ciphertext=system.credentials)
                except CredentialsError:
                    failed.append(f"{system.pk} ({system.name})")
                    continue
                system.save(update_fields=["credentials"])
                done += 1
        webhooks = 0
        for pk in AlertWebhook.objects.values_list("pk", flat=True):
            with transaction.atomic():
                webhook = AlertWebhook.objects.select_for_update().get(pk=pk)
                try:
                    webhook.url_ciphertext = credentials_reencrypt(ciphertext=webhook.url_ciphertext)
                except CredentialsError:
                    failed.append(f"the alert webhook of organisation {webhook.organisation_id}")
                    continue
                webhook.save(update_fields=["url_ciphertext"])
                webhooks += 1
        self.stdout.write(f"Re-encrypted the credentials of {done} linked system(s) and {webhooks} alert webhook(s).")
        if failed:
            raise CommandError(
                "No configured key decrypts the credentials of: " + ", ".join(failed) + ". Keep the old key in "
                "CREDENTIALS_KEYS until these are re-entered."
            )
