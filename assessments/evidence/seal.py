"""Seals on the rows that decide readiness: a check's rule and a run's outcome.

Readiness reads a check's threshold and its latest run's verdict straight from their rows.
Someone with write access to the database (and not to the application's secret) could
lower a threshold or turn a fail into a pass without any service running, and so without
any audit event. Each such row therefore carries an HMAC-SHA256 over exactly the fields
that matter, keyed from SECRET_KEY: a rule whose seal does not match is not run (the run
fails saying so), and a run whose seal does not match counts as "could not be read", which
keeps its criterion from counting as met. After SECRET_KEY changes, `manage.py
evidence_reseal` re-seals every row (an administrator's deliberate act, printed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

RULE = "check.rule"
OUTCOME = "check_run.outcome"


@cache
def _key_for(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"preflight-evidence-seal", info=b"row-seal-v1")
    return hkdf.derive(secret.encode())


def _key() -> bytes:
    # Derived once per secret: readiness checks a seal for every check it scores.
    return _key_for(settings.SECRET_KEY)


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)  # exact, and the same on every database
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()  # as the database gives it back
    return value


def seal(kind: str, pk: int, fields: dict[str, Any]) -> str:
    message = json.dumps([kind, pk, {k: _canonical(v) for k, v in sorted(fields.items())}], separators=(",", ":"))
    return hmac.new(_key(), message.encode(), hashlib.sha256).hexdigest()


def rule_fields(check: Any) -> dict[str, Any]:
    """What a check's seal covers: its rule, its version, and what it is a rule about."""
    return {
        "linked_system": check.linked_system_id,
        "criterion": check.criterion_id,
        "name": check.name,
        "metric": check.metric,
        "comparator": check.comparator,
        "threshold": check.threshold,
        "tolerance": check.tolerance,
        "baseline": check.baseline,
        "dataset_fingerprint": check.dataset_fingerprint,
        "version": check.rule_version,
    }


def outcome_fields(run: Any) -> dict[str, Any]:
    """What a run's seal covers: whose run it is and what it concluded, when."""
    return {
        "check": run.check_rule_id,
        "status": run.status,
        "verdict": run.verdict,
        "value": run.value,
        "finished_at": run.finished_at,
        "rule_version": (run.rule or {}).get("version"),
    }


def rule_seal(check: Any) -> str:
    return seal(RULE, check.pk, rule_fields(check))


def outcome_seal(run: Any) -> str:
    return seal(OUTCOME, run.pk, outcome_fields(run))


def rule_sealed(check: Any) -> bool:
    return hmac.compare_digest(check.rule_seal or "", rule_seal(check))


def outcome_sealed(run: Any) -> bool:
    return hmac.compare_digest(run.outcome_seal or "", outcome_seal(run))


def rule_reseal(*, check: Any) -> None:
    """Re-seal a rule a service just changed outside the evidence services (moving a pilot to
    a newer framework version points its checks at other criteria); that service audits it."""
    type(check).objects.filter(pk=check.pk).update(rule_seal=rule_seal(check))
