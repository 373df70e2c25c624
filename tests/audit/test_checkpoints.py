"""Checkpoints: only trusted keys count, every checkpoint is checked against the events it
signed, they are signed on a cadence, and their write-once anchored copies must agree
with the database. The tampering below is done with raw SQL, as an attacker would."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from assessments.audit import chain, checkpoints
from assessments.audit.anchor import AnchorConflict, anchor_checkpoint, anchor_dir, anchor_stem
from assessments.audit.checkpoints import (
    checkpoint_create,
    checkpoint_finish,
    checkpoint_sign,
    checkpoint_sign_if_due,
)
from assessments.audit.context import Actor
from assessments.audit.models import (
    AnchorStatus,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    AuditVerification,
    TimestampStatus,
)
from assessments.audit.selectors import (
    checkpoint_freshness,
    checkpoints_due,
    checkpoints_unfinished,
    integrity_badge,
)
from assessments.audit.services import audit_record
from assessments.audit.signing import key_id, public_key_b64
from assessments.audit.verify import anchor_problem, audit_export, audit_verify

JOB = Actor.system("tests")


def _append(organisation, count: int) -> None:
    """``count`` events, each committed on its own as a writing service would."""
    for number in range(count):
        with transaction.atomic():
            audit_record(
                organisation=organisation, actor=JOB, action="test.poked", object_type="test", object_id=number
            )


def _head(organisation) -> AuditChainHead:
    return AuditChainHead.objects.get(organisation=organisation)


def _foreign_checkpoint(organisation) -> AuditCheckpoint | None:
    """A checkpoint of the real head, correctly signed, by a key nobody trusts."""
    return checkpoints._sign(organisation=organisation, key=Ed25519PrivateKey.generate(), claim=None, at=None)


def _recompute_from(organisation, raw_sql, sequence: int, label: str) -> None:
    """Rewrite one event and recompute every later hash and the head, so the chain is self-consistent."""
    prev = AuditEvent.objects.get(organisation=organisation, sequence=sequence - 1).hash
    for event in AuditEvent.objects.filter(organisation=organisation, sequence__gte=sequence).order_by("sequence"):
        record = {
            "organisation": organisation.slug, "sequence": event.sequence,
            "occurred_at": chain.format_datetime(event.occurred_at), "actor_type": event.actor_type,
            "actor_id": event.actor_id, "actor_label": label if event.sequence == sequence else event.actor_label,
            "action": event.action, "object_type": event.object_type, "object_id": event.object_id,
            "pilot_id": event.pilot_id, "changes": event.changes, "request_id": event.request_id, "prev_hash": prev,
        }  # fmt: skip
        prev = chain.event_hash(record)
        raw_sql(
            "UPDATE audit_auditevent SET actor_label = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [record["actor_label"], record["prev_hash"], prev, event.pk],
        )
    last = AuditEvent.objects.filter(organisation=organisation).latest("sequence")
    raw_sql("UPDATE audit_auditchainhead SET sequence = %s, hash = %s WHERE organisation_id = %s",
            [last.sequence, last.hash, organisation.pk])  # fmt: skip


def _forge(organisation, sequence: int, prev_hash: str) -> str:
    record = {
        "organisation": organisation.slug, "sequence": sequence, "occurred_at": "2026-11-22T10:00:00.000000Z",
        "actor_type": "user", "actor_id": "1", "actor_label": "owner", "action": "response.updated",
        "object_type": "response", "object_id": "1", "pilot_id": None, "changes": {}, "request_id": "",
        "prev_hash": prev_hash,
    }  # fmt: skip
    digest = chain.event_hash(record)
    AuditEvent.objects.create(
        organisation=organisation, occurred_at=dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC), hash=digest,
        **{k: v for k, v in record.items() if k not in {"organisation", "occurred_at"}},
    )  # fmt: skip
    return digest


# --- 12. trusted keys -------------------------------------------------------------


def test_a_checkpoint_signed_by_a_foreign_key_fails_on_a_host_without_the_key_file(busy_org, signing_key, settings):
    ours = checkpoint_create(organisation=busy_org)
    _foreign_checkpoint(busy_org)
    signing_key.unlink()  # a verifying host that holds no signing key
    settings.AUDIT_TRUSTED_KEY_IDS = [ours.key_id.upper()]  # ids are compared case-insensitively
    result = audit_verify(organisation=busy_org)
    assert (result.problem.kind, result.problem.sequence) == ("untrusted checkpoint key", None)
    assert "which is not trusted" in result.problem.detail
    settings.AUDIT_TRUSTED_KEY_IDS = [ours.key_id]
    AuditCheckpoint.objects.exclude(pk=ours.pk).delete()
    for path in anchor_dir().glob("*.json"):
        if json.loads(path.read_text())["key_id"] != ours.key_id:
            path.chmod(0o644)
            path.unlink()
    assert audit_verify(organisation=busy_org).ok


def test_with_no_trusted_key_configured_a_checkpoint_is_refused_with_a_clear_message(busy_org, signing_key):
    checkpoint_create(organisation=busy_org)
    signing_key.unlink()
    result = audit_verify(organisation=busy_org)
    assert result.problem.kind == "untrusted checkpoint key"
    assert "no trusted checkpoint key is configured" in result.problem.detail
    assert "AUDIT_TRUSTED_KEY_IDS" in result.problem.detail
    assert not AuditVerification.objects.latest("verified_at").ok


def test_the_verify_command_without_the_key_file_refuses_a_checkpoint_unless_its_key_is_trusted(busy_org, signing_key):
    checkpoint = checkpoint_create(organisation=busy_org)
    signing_key.unlink()
    err = io.StringIO()
    with pytest.raises(SystemExit) as excinfo:
        call_command("audit_verify", "--org", busy_org.slug, stdout=io.StringIO(), stderr=err)
    assert excinfo.value.code == 1
    assert "untrusted checkpoint key" in err.getvalue()
    out = io.StringIO()
    call_command("audit_verify", "--org", busy_org.slug, "--trusted-key", checkpoint.key_id, stdout=out)
    assert "intact" in out.getvalue() and "1 checkpoints" in out.getvalue()


def test_a_malformed_trusted_key_id_is_reported_not_ignored(busy_org, signing_key, settings):
    checkpoint_create(organisation=busy_org)
    settings.AUDIT_TRUSTED_KEY_IDS = ["not-a-key"]
    result = audit_verify(organisation=busy_org, record_result=False)
    assert result.problem.kind == "untrusted checkpoint key"
    assert "'not-a-key' is not a key id" in result.problem.detail


def test_the_standalone_verifier_pins_trusted_keys(busy_org, signing_key, tmp_path, capsys):
    ours = checkpoint_create(organisation=busy_org)
    other = Ed25519PrivateKey.generate()
    foreign = {**ours.payload, "key_id": key_id(other.public_key()), "public_key": public_key_b64(other.public_key())}
    foreign["signature"] = base64.b64encode(other.sign(chain.checkpoint_message(foreign))).decode()
    export = tmp_path / "events.jsonl"
    with export.open("wb") as handle:
        audit_export(organisation=busy_org, out=handle)
    (tmp_path / "ours.json").write_text(json.dumps(ours.payload))
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    base = [str(export), "--organisation", busy_org.slug]

    assert chain.main([*base, "--checkpoint", str(tmp_path / "ours.json")]) == 1
    assert "no trusted checkpoint key is configured" in capsys.readouterr().err
    assert chain.main([*base, "--checkpoint", str(tmp_path / "ours.json"), "--trusted-key-id", ours.key_id]) == 0
    assert "1 checkpoints" in capsys.readouterr().out
    pinned = [*base, "--checkpoint", str(tmp_path / "foreign.json"), "--trusted-key", ours.key_id]
    assert chain.main(pinned) == 1
    assert "untrusted checkpoint key" in capsys.readouterr().err
    both = [*pinned, "--trusted-key", foreign["key_id"], "--anchor-dir", str(anchor_dir())]
    assert chain.main(both) == 0
    assert "2 checkpoints" in capsys.readouterr().out


# --- every checkpoint against the events it signed (on PostgreSQL: tests run there in CI) --


def test_an_edit_with_every_later_hash_recomputed_is_located_at_the_edited_event(busy_org, signing_key, raw_sql):
    _append(busy_org, 3)
    first = checkpoint_create(organisation=busy_org)
    _append(busy_org, 5)
    checkpoint_create(organisation=busy_org)
    edited = first.sequence - 2
    _recompute_from(busy_org, raw_sql, edited, "mallory")
    result = audit_verify(organisation=busy_org)
    assert (result.problem.sequence, result.problem.kind) == (edited, "hash mismatch")
    assert f"signed checkpoint #{first.sequence}" in result.problem.detail
    # The attacker also deletes every checkpoint row: the anchored copies still locate it.
    raw_sql("DELETE FROM audit_auditcheckpoint WHERE organisation_id = %s", [busy_org.pk])
    result = audit_verify(organisation=busy_org)
    assert (result.problem.sequence, result.problem.kind) == (edited, "hash mismatch")


def test_a_truncated_tail_with_the_head_rewound_and_the_checkpoints_deleted_is_caught_by_the_anchor(
    busy_org, signing_key, raw_sql
):
    head = _head(busy_org)
    checkpoint_create(organisation=busy_org)
    keep = head.sequence - 3
    raw_sql("DELETE FROM audit_auditevent WHERE organisation_id = %s AND sequence > %s", [busy_org.pk, keep])
    last = AuditEvent.objects.get(organisation=busy_org, sequence=keep)
    raw_sql("UPDATE audit_auditchainhead SET sequence = %s, hash = %s WHERE id = %s", [keep, last.hash, head.pk])
    raw_sql("DELETE FROM audit_auditcheckpoint WHERE organisation_id = %s", [busy_org.pk])
    result = audit_verify(organisation=busy_org)
    assert (result.problem.kind, result.problem.sequence) == ("head behind checkpoint", keep + 1)


def test_a_forged_tail_replacing_signed_events_with_the_head_matched_is_located(busy_org, signing_key, raw_sql):
    head = _head(busy_org)
    checkpoint_create(organisation=busy_org)
    # Drop the last two events, append two forged ones in their place, fix the head, hide the checkpoint.
    raw_sql(
        "DELETE FROM audit_auditevent WHERE organisation_id = %s AND sequence > %s", [busy_org.pk, head.sequence - 2]
    )
    prev = AuditEvent.objects.get(organisation=busy_org, sequence=head.sequence - 2).hash
    prev = _forge(busy_org, head.sequence - 1, prev)
    prev = _forge(busy_org, head.sequence, prev)
    AuditChainHead.objects.filter(pk=head.pk).update(hash=prev)
    raw_sql("DELETE FROM audit_auditcheckpoint WHERE organisation_id = %s", [busy_org.pk])
    result = audit_verify(organisation=busy_org)
    assert (result.problem.sequence, result.problem.kind) == (head.sequence - 1, "hash mismatch")


# --- 14b. the anchor directory ------------------------------------------------------


def test_each_checkpoint_is_written_once_read_only_and_never_overwritten(busy_org, signing_key):
    checkpoint = checkpoint_create(organisation=busy_org)
    assert checkpoint.anchor_status == AnchorStatus.ANCHORED and checkpoint.anchor_error == ""
    path = anchor_dir() / f"{anchor_stem(checkpoint.payload)}.json"
    assert json.loads(path.read_text()) == checkpoint.payload
    assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    anchor_checkpoint(payload=checkpoint.payload)  # the same content again is a no-op
    with pytest.raises(AnchorConflict, match="not overwritten"):
        anchor_checkpoint(payload={**checkpoint.payload, "head_hash": "f" * 64})
    assert json.loads(path.read_text()) == checkpoint.payload


def test_an_anchor_directory_that_cannot_be_written_keeps_the_checkpoint_and_is_retried(
    busy_org, signing_key, settings, tmp_path
):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    settings.AUDIT_ANCHOR_DIR = str(blocked)
    checkpoint = checkpoint_create(organisation=busy_org)
    assert checkpoint.anchor_status == AnchorStatus.NOT_ANCHORED and checkpoint.anchor_error
    later = checkpoint.signed_at + dt.timedelta(minutes=2)
    assert checkpoints_unfinished(now=later) == [checkpoint.pk]
    assert "Not anchored" in render_to_string("audit/_badge.html", {"badge": integrity_badge(organisation=busy_org)})
    settings.AUDIT_ANCHOR_DIR = str(tmp_path / "anchor")
    assert checkpoint_finish(checkpoint=checkpoint, now=later).anchor_status == AnchorStatus.ANCHORED
    assert checkpoints_unfinished(now=later) == []
    assert audit_verify(organisation=busy_org).ok


def test_a_checkpoint_missing_from_the_database_is_named(busy_org, signing_key, raw_sql):
    checkpoint = checkpoint_create(organisation=busy_org)
    raw_sql("DELETE FROM audit_auditcheckpoint WHERE id = %s", [checkpoint.pk])
    result = audit_verify(organisation=busy_org)
    assert result.problem.kind == "checkpoint missing from database"
    assert f"checkpoint #{checkpoint.sequence} anchored as" in result.problem.detail


def test_a_checkpoint_absent_from_the_anchor_is_named(busy_org, signing_key):
    checkpoint = checkpoint_create(organisation=busy_org)
    (anchor_dir() / f"{anchor_stem(checkpoint.payload)}.json").unlink()
    result = audit_verify(organisation=busy_org)
    assert result.problem.kind == "checkpoint not anchored"
    assert f"checkpoint #{checkpoint.sequence} signed" in result.problem.detail


def test_the_first_difference_between_database_and_anchor_is_named(busy_org, signing_key, raw_sql):
    first = checkpoint_create(organisation=busy_org)
    _append(busy_org, 2)
    checkpoint_create(organisation=busy_org)
    raw_sql(
        "UPDATE audit_auditcheckpoint SET payload = %s WHERE id = %s",
        [json.dumps({**first.payload, "head_hash": "e" * 64}), first.pk],
    )
    problem = anchor_problem(organisation=busy_org)
    assert problem.kind == "checkpoint differs from anchor"
    assert f"checkpoint #{first.sequence}" in problem.detail and "head hash" in problem.detail
    other = {**first.payload, "sequence": first.sequence + 1}
    raw_sql("UPDATE audit_auditcheckpoint SET payload = %s WHERE id = %s", [json.dumps(other), first.pk])
    assert "sequence" in anchor_problem(organisation=busy_org).detail
    # The chain check reports the forged payload first: its signature no longer holds.
    assert audit_verify(organisation=busy_org).problem.kind == "bad checkpoint signature"


# --- 13. cadence -------------------------------------------------------------------


def test_every_nth_event_queues_one_signing_job_after_commit(busy_org, signing_key, settings, monkeypatch,
                                                             django_capture_on_commit_callbacks):  # fmt: skip
    from assessments.audit import tasks

    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 5
    checkpoint_create(organisation=busy_org)
    queued: list[int] = []
    monkeypatch.setattr(tasks.audit_checkpoint_org, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _append(busy_org, 12)  # a burst: only the 5th and 10th append queue a job
    assert queued == []  # nothing is queued inside the open transaction
    assert len(callbacks) == 2
    for callback in callbacks:
        callback()
    assert queued == [busy_org.pk, busy_org.pk]


def test_a_broker_outage_does_not_fail_the_committed_change(busy_org, signing_key, settings, monkeypatch,
                                                            django_capture_on_commit_callbacks):  # fmt: skip
    from assessments.audit import tasks

    def down(*args: object) -> None:
        raise ConnectionError("broker down")

    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 1
    monkeypatch.setattr(tasks.audit_checkpoint_org, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        _append(busy_org, 1)
    assert checkpoints_due(now=timezone.now()) == [busy_org.pk]  # the minute job still finds it


def test_n_unsigned_events_make_a_checkpoint_due_and_the_job_signs_it(busy_org, signing_key, settings):
    from assessments.audit.tasks import audit_checkpoint_org

    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 5
    checkpoint_create(organisation=busy_org)
    _append(busy_org, 4)
    now = timezone.now()
    assert checkpoints_due(now=now) == []
    assert audit_checkpoint_org(busy_org.pk) is False
    _append(busy_org, 1)
    assert checkpoints_due(now=now) == [busy_org.pk]
    assert audit_checkpoint_org(busy_org.pk) is True
    newest = AuditCheckpoint.objects.filter(organisation=busy_org).order_by("-sequence").first()
    assert newest.sequence == _head(busy_org).sequence == _head(busy_org).checkpoint_sequence
    assert newest.payload["first_sequence"] == newest.sequence - 4 and len(newest.payload["event_hashes"]) == 5
    assert audit_checkpoint_org(busy_org.pk) is False  # a duplicate delivery signs nothing


def test_m_minutes_with_any_unsigned_event_make_a_checkpoint_due(busy_org, signing_key):
    checkpoint = checkpoint_create(organisation=busy_org)
    signed = checkpoint.signed_at
    assert checkpoints_due(now=signed + dt.timedelta(hours=5)) == []  # nothing unsigned: nothing to do
    _append(busy_org, 1)
    assert checkpoints_due(now=signed + dt.timedelta(minutes=14)) == []
    assert checkpoint_sign_if_due(organisation=busy_org, now=signed + dt.timedelta(minutes=14)).checkpoint is None
    later = signed + dt.timedelta(minutes=15)
    assert checkpoints_due(now=later) == [busy_org.pk]
    assert checkpoint_sign_if_due(organisation=busy_org, now=later).checkpoint.sequence == _head(busy_org).sequence


def test_the_minute_job_queues_due_organisations_and_unfinished_checkpoints(busy_org, signing_key, monkeypatch):
    from assessments.audit import tasks

    queued: dict[str, list[int]] = {"sign": [], "finish": []}
    monkeypatch.setattr(tasks.audit_checkpoint_org, "delay", queued["sign"].append)
    monkeypatch.setattr(tasks.audit_checkpoint_finish, "delay", queued["finish"].append)
    assert tasks.audit_checkpoint_due() == 1  # never signed, with events
    unfinished = checkpoint_create(organisation=busy_org)
    AuditCheckpoint.objects.filter(pk=unfinished.pk).update(
        anchor_status=AnchorStatus.NOT_ANCHORED,
        anchor_error="disk full",
        signed_at=timezone.now() - dt.timedelta(minutes=5),
    )
    assert tasks.audit_checkpoint_due() == 0
    assert queued == {"sign": [busy_org.pk], "finish": [unfinished.pk]}


def test_a_signer_that_loses_the_race_signs_nothing(busy_org, signing_key, monkeypatch):
    from assessments.audit import verify

    _append(busy_org, 1)
    real = verify.audit_verify_tail

    def verify_while_another_signs(*, organisation):
        result = real(organisation=organisation)
        checkpoint_create(organisation=organisation)  # the other signer wins meanwhile
        return result

    monkeypatch.setattr(checkpoints, "audit_verify_tail", verify_while_another_signs)
    outcome = checkpoint_sign(organisation=busy_org)
    assert outcome.checkpoint is None and outcome.skipped == "another signer signed first"
    assert AuditCheckpoint.objects.filter(organisation=busy_org).count() == 1


def test_the_signer_verifies_the_tail_and_never_signs_a_broken_one(busy_org, signing_key, settings, raw_sql):
    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 2
    checkpoint_create(organisation=busy_org)
    _append(busy_org, 2)
    tail = _head(busy_org).sequence
    raw_sql(
        "UPDATE audit_auditevent SET action = 'x' WHERE organisation_id = %s AND sequence = %s", [busy_org.pk, tail]
    )
    outcome = checkpoint_sign_if_due(organisation=busy_org, now=timezone.now())
    assert outcome.checkpoint is None and "broken" in outcome.skipped
    assert AuditCheckpoint.objects.filter(organisation=busy_org).count() == 1
    failure = AuditVerification.objects.latest("verified_at")
    assert (failure.ok, failure.first_bad_sequence) == (False, tail)


def test_the_signer_refuses_when_an_event_before_the_last_checkpoint_was_recomputed(busy_org, signing_key, raw_sql):
    checkpoint_create(organisation=busy_org)
    _recompute_from(busy_org, raw_sql, 3, "mallory")
    _append(busy_org, 1)
    outcome = checkpoint_sign(organisation=busy_org)
    assert outcome.checkpoint is None
    assert outcome.verification.problem.sequence == 3


def test_the_badge_shows_the_checkpoint_age_and_events_since(busy_org, signing_key):
    checkpoint = checkpoint_create(organisation=busy_org)
    AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(signed_at=timezone.now() - dt.timedelta(minutes=4))
    _append(busy_org, 12)
    html = render_to_string("audit/_badge.html", {"badge": integrity_badge(organisation=busy_org)})
    assert "Last signed checkpoint 4\xa0minutes ago, 12 events since." in html


def test_checkpoint_freshness_reports_each_organisations_lag(busy_org, other_org, signing_key):
    checkpoint = checkpoint_create(organisation=busy_org)
    _append(busy_org, 3)
    now = checkpoint.signed_at + dt.timedelta(minutes=7)
    rows = {row.organisation: row for row in checkpoint_freshness(now=now)}
    ours = rows[busy_org.slug]
    assert (ours.unsigned_events, ours.age_seconds, ours.not_timestamped, ours.not_anchored) == (3, 420.0, 0, 0)
    assert rows[other_org.slug].last_signed_at is None and rows[other_org.slug].age_seconds is None


def test_the_hourly_job_verifies_everything_but_signs_only_new_events(busy_org, signing_key):
    from assessments.audit.tasks import audit_checkpoint_all

    assert audit_checkpoint_all() == 1
    assert audit_checkpoint_all() == 0
    assert AuditCheckpoint.objects.filter(organisation=busy_org).count() == 1
    assert AuditVerification.objects.filter(organisation=busy_org, ok=True).count() == 2


def test_a_checkpoint_row_must_say_why_it_is_not_timestamped(busy_org, signing_key):
    from django.db import IntegrityError

    checkpoint = checkpoint_create(organisation=busy_org)
    assert checkpoint.timestamp_status == TimestampStatus.NOT_REQUESTED
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(timestamp_status=TimestampStatus.NOT_TIMESTAMPED)


def test_the_checkpoint_command_verifies_before_it_signs(busy_org, signing_key, raw_sql):
    out = io.StringIO()
    call_command("audit_checkpoint", "--org", busy_org.slug, stdout=out)
    assert "signed head" in out.getvalue() and "anchored in" in out.getvalue()
    raw_sql("UPDATE audit_auditevent SET action = 'x' WHERE organisation_id = %s AND sequence = 2", [busy_org.pk])
    err = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("audit_checkpoint", "--org", busy_org.slug, stdout=io.StringIO(), stderr=err)
    assert "not signed — the chain is broken: sequence 2: hash mismatch" in err.getvalue()
    assert AuditCheckpoint.objects.filter(organisation=busy_org).count() == 1
