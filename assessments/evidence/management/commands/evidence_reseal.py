"""Re-seal every check rule and finished run with the current SECRET_KEY.

The seals (see assessments/evidence/seal.py) are keyed from SECRET_KEY: after changing
it, every row looks altered until re-sealed. Re-sealing vouches for the rows as they are
now, so run it right after the key change, not after something looks wrong. It prints
what it did and records no audit event (no rule or outcome changes).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from assessments.evidence.models import FINISHED, Check, CheckRun
from assessments.evidence.seal import outcome_seal, rule_seal


class Command(BaseCommand):
    help = "Re-seal check rules and finished runs after SECRET_KEY changed."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            checks = 0
            for check in Check.objects.select_for_update().iterator():
                Check.objects.filter(pk=check.pk).update(rule_seal=rule_seal(check))
                checks += 1
            runs = 0
            for run in CheckRun.objects.filter(status__in=FINISHED).iterator():
                CheckRun.objects.filter(pk=run.pk).update(outcome_seal=outcome_seal(run))
                runs += 1
        self.stdout.write(f"Re-sealed {checks} check rule(s) and {runs} finished run(s) with the current key.")
