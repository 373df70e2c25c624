"""The checkpoint migrations run forward on a populated PostgreSQL database, and checkpoints
signed before them (format 1, written as files by the old code) still verify and get anchored."""

from __future__ import annotations

import base64
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from assessments.audit import chain
from assessments.audit.anchor import anchor_dir
from assessments.audit.checkpoints import checkpoint_finish
from assessments.audit.models import AnchorStatus, AuditChainHead, AuditCheckpoint, TimestampStatus
from assessments.audit.signing import key_id, public_key_b64, signing_key_load
from assessments.audit.verify import audit_verify

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
BEFORE = [("audit", "0003_verification")]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def test_the_checkpoint_migrations_run_forward_on_a_populated_database(busy_org, signing_key):
    if connection.vendor != "postgresql":
        pytest.skip("the migration is exercised on PostgreSQL")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    head = AuditChainHead.objects.get(organisation=busy_org)
    try:
        executor = _migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps.get_model("audit", "AuditCheckpoint")
        key = signing_key_load()
        payload = {
            "format": chain.CHECKPOINT_FORMAT_V1, "organisation": busy_org.slug, "sequence": head.sequence,
            "head_hash": head.hash, "signed_at": chain.format_datetime(timezone.now()),
            "key_id": key_id(key.public_key()), "public_key": public_key_b64(key.public_key()),
        }  # fmt: skip
        payload["signature"] = base64.b64encode(key.sign(chain.checkpoint_message(payload))).decode()
        row = old.objects.create(
            organisation_id=busy_org.pk, sequence=head.sequence, head_hash=head.hash, signed_at=timezone.now(),
            key_id=payload["key_id"], signature=payload["signature"], payload=payload,
        )  # fmt: skip
        # The old code's file name: <org>-<sequence>-<row id>.json
        anchor_dir().mkdir(parents=True, exist_ok=True)
        (anchor_dir() / f"{busy_org.slug}-{head.sequence:010d}-{row.pk}.json").write_text(json.dumps(payload))
    finally:
        _migrate(latest)

    checkpoint = AuditCheckpoint.objects.get(pk=row.pk)
    assert AuditChainHead.objects.get(pk=head.pk).checkpoint_sequence == head.sequence
    assert checkpoint.timestamp_status == TimestampStatus.NOT_REQUESTED
    assert checkpoint.anchor_status == AnchorStatus.NOT_ANCHORED and checkpoint.anchor_error
    assert audit_verify(organisation=busy_org).ok
    assert checkpoint_finish(checkpoint=checkpoint).anchor_status == AnchorStatus.ANCHORED
    result = audit_verify(organisation=busy_org)
    assert result.ok and result.checkpoints_checked == 1
