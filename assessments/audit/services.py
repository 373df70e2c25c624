"""Appending to the audit chain. Every writing service calls ``audit_record`` once,
inside its own transaction, so the change and its event commit or vanish together."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from assessments.audit.canonical import event_hash, to_jsonable
from assessments.audit.context import Actor, current_request_id
from assessments.audit.models import AuditChainHead, AuditEvent
from assessments.organisations.models import Organisation

Changes = dict[str, list[Any]]
logger = logging.getLogger(__name__)


def diff_fields(*, before: dict[str, Any], after: dict[str, Any]) -> Changes:
    """``{field: [before, after]}`` for the fields whose value changed."""
    changes: Changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = to_jsonable(before.get(name)), to_jsonable(after.get(name))
        if old != new:
            changes[name] = [old, new]
    return changes


def snapshot(instance: models.Model, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The audited values of ``fields``, with foreign keys as their ids."""
    values: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        attname = getattr(field, "attname", name)
        values[name] = getattr(instance, attname)
    return values


def created_changes(instance: models.Model, fields: list[str] | tuple[str, ...]) -> Changes:
    return diff_fields(before={}, after=snapshot(instance, fields))


def audit_chain_start(*, organisation: Organisation) -> AuditChainHead:
    """Create the empty chain head; called once when the organisation is created."""
    return AuditChainHead.objects.create(organisation=organisation)


def _lock_head(organisation: Organisation) -> AuditChainHead:
    # The row lock on the head serialises appends per organisation on PostgreSQL;
    # SQLite runs IMMEDIATE transactions, which already serialise writers.
    return AuditChainHead.objects.select_for_update().get(organisation=organisation)


def audit_record(
    *,
    organisation: Organisation,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    changes: Changes | None = None,
    pilot_id: int | None = None,
) -> AuditEvent:
    """Append one event to ``organisation``'s chain. Must run inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction that makes the change")
    head = _lock_head(organisation)
    occurred_at = timezone.now()
    record: dict[str, Any] = {
        "organisation": organisation.slug,
        "sequence": head.sequence + 1,
        "occurred_at": to_jsonable(occurred_at),
        "actor_type": actor.type,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "pilot_id": pilot_id,
        "changes": to_jsonable(changes or {}),
        "request_id": current_request_id.get(),
        "prev_hash": head.hash,
    }
    digest = event_hash(record)
    event = AuditEvent.objects.create(
        organisation=organisation,
        sequence=record["sequence"],
        occurred_at=occurred_at,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        object_type=object_type,
        object_id=record["object_id"],
        pilot_id=pilot_id,
        changes=record["changes"],
        request_id=record["request_id"],
        prev_hash=head.hash,
        hash=digest,
    )
    AuditChainHead.objects.filter(pk=head.pk).update(sequence=event.sequence, hash=digest)
    unsigned = event.sequence - head.checkpoint_sequence
    # Exactly one append in every EVERY_EVENTS queues the signer, so a burst queues one job, not fifty.
    if unsigned > 0 and unsigned % settings.AUDIT_CHECKPOINT_EVERY_EVENTS == 0:
        transaction.on_commit(partial(_checkpoint_enqueue, organisation.pk), robust=True)
    return event


def _checkpoint_enqueue(organisation_id: int) -> None:
    """After commit: queue the checkpoint signer. A broker outage must not fail the change that
    was just committed; the minute job signs what is due anyway."""
    from assessments.audit.tasks import audit_checkpoint_org  # tasks import the services

    try:
        audit_checkpoint_org.delay(organisation_id)
    except Exception:
        logger.warning("could not queue the audit checkpoint of organisation %s", organisation_id, exc_info=True)
