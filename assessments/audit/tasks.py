"""Audit jobs: the hourly full verification, and checkpoints on a cadence of events and minutes.

Each job takes ids, fetches its rows and calls a service; a missing row is logged
and skipped. Signing claims the chain head with a compare-and-set, so a
re-delivered or duplicated job signs nothing twice.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from assessments.audit.checkpoints import checkpoint_finish, checkpoint_sign, checkpoint_sign_if_due
from assessments.audit.models import AuditCheckpoint
from assessments.audit.selectors import checkpoints_due, checkpoints_unfinished
from assessments.audit.signing import SigningKeyMissing
from assessments.organisations.models import Organisation
from readiness.jobs import job

logger = logging.getLogger(__name__)
NO_KEY = "no audit signing key configured; run manage.py audit_keygen"


@job()
def audit_checkpoint_all() -> int:
    """Hourly: verify every organisation's whole chain, and sign its head if it has new events.

    A broken chain is logged loudly and not signed, so a checkpoint never blesses tampering.
    """
    signed = 0
    for organisation_id in Organisation.objects.values_list("pk", flat=True):
        organisation = Organisation.objects.filter(pk=organisation_id).first()
        if organisation is None:
            logger.warning("organisation %s vanished before its checkpoint", organisation_id)
            continue
        try:
            outcome = checkpoint_sign(organisation=organisation, full_verification=True)
        except SigningKeyMissing:
            logger.error(NO_KEY)
            return signed
        signed += outcome.checkpoint is not None
        _first_checkpoint_rescore(organisation, outcome.checkpoint)
    return signed


def _first_checkpoint_rescore(organisation: Organisation, checkpoint: AuditCheckpoint | None) -> None:
    """An organisation's first signed checkpoint is new evidence for the criteria that count the
    audit trail Preflight holds: rescore them now rather than at the next daily rescore.
    Later checkpoints only move that evidence's date, which the daily rescore picks up."""
    from assessments.frameworks.models import HeldEvidence
    from assessments.pilots.scorecache import scores_refresh_held

    if (
        checkpoint is not None
        and not AuditCheckpoint.objects.filter(organisation=organisation).exclude(pk=checkpoint.pk).exists()
    ):
        scores_refresh_held(kind=HeldEvidence.AUDIT_TRAIL, organisation_id=organisation.pk)


@job()
def audit_checkpoint_org(organisation_id: int) -> bool:
    """Sign one organisation's checkpoint if it is due (queued after every N events)."""
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None:
        logger.warning("organisation %s vanished before its checkpoint", organisation_id)
        return False
    try:
        outcome = checkpoint_sign_if_due(organisation=organisation, now=timezone.now())
    except SigningKeyMissing:
        logger.error(NO_KEY)
        return False
    _first_checkpoint_rescore(organisation, outcome.checkpoint)
    return outcome.checkpoint is not None


@job()
def audit_checkpoint_finish(checkpoint_id: int) -> bool:
    """Retry a checkpoint's RFC 3161 timestamp or its write to the anchor directory."""
    checkpoint = AuditCheckpoint.objects.filter(pk=checkpoint_id).first()
    if checkpoint is None:
        logger.warning("audit checkpoint %s vanished before it was finished", checkpoint_id)
        return False
    checkpoint_finish(checkpoint=checkpoint)
    return True


@job()
def audit_checkpoint_due() -> int:
    """Every minute: queue signing for organisations whose checkpoint is due (the M-minute
    cadence, and any N-event signing a broker outage lost) and retries of unfinished checkpoints."""
    now = timezone.now()
    due = checkpoints_due(now=now)
    for organisation_id in due:
        audit_checkpoint_org.delay(organisation_id)
    for checkpoint_id in checkpoints_unfinished(now=now):
        audit_checkpoint_finish.delay(checkpoint_id)
    return len(due)
