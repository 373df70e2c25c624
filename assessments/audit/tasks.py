"""Scheduled audit jobs."""

from __future__ import annotations

import logging

from assessments.audit.signing import SigningKeyMissing
from assessments.audit.verify import audit_verify, checkpoint_create
from assessments.organisations.models import Organisation
from readiness.jobs import job

logger = logging.getLogger(__name__)


@job()
def audit_checkpoint_all() -> int:
    """Hourly: verify, then sign, every organisation's chain head.

    A re-delivered run only adds another signature of the same head, which is harmless.
    A broken chain is logged loudly and not signed, so a checkpoint never blesses tampering.
    """
    signed = 0
    for organisation_id in Organisation.objects.values_list("pk", flat=True):
        organisation = Organisation.objects.filter(pk=organisation_id).first()
        if organisation is None:
            logger.warning("organisation %s vanished before its checkpoint", organisation_id)
            continue
        result = audit_verify(organisation=organisation)
        if not result.ok:
            logger.error("audit chain of %s is broken: %s; not signing", organisation.slug, result.problem)
            continue
        try:
            checkpoint_create(organisation=organisation)
        except SigningKeyMissing:
            logger.error("no audit signing key configured; run manage.py audit_keygen")
            return signed
        signed += 1
    return signed
