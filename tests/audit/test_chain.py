"""The canonical encoding is stable, and every kind of tampering is detected and located."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection, transaction

from assessments.audit import chain
from assessments.audit.models import AuditChainHead, AuditEvent, AuditVerification
from assessments.audit.selectors import integrity_badge
from assessments.audit.verify import audit_export, audit_verify, checkpoint_create
from assessments.pilots.models import Evidence

FIXED = {
    "organisation": "acme",
    "sequence": 7,
    "occurred_at": "2026-11-22T09:10:25.123456Z",
    "actor_type": "user",
    "actor_id": "3",
    "actor_label": "søren",
    "action": "response.updated",
    "object_type": "response",
    "object_id": "41",
    "pilot_id": None,
    "changes": {"status": ["not_started", "met"], "b": [None, "1.50"], "a": [None, "日本"]},
    "request_id": "abc",
    "prev_hash": "0" * 64,
}


def test_the_canonical_encoding_is_exactly_specified():
    assert chain.canonical_bytes(FIXED) == (
        '{"action":"response.updated","actor_id":"3","actor_label":"søren","actor_type":"user",'
        '"changes":{"a":[null,"日本"],"b":[null,"1.50"],"status":["not_started","met"]},'
        '"object_id":"41","object_type":"response","occurred_at":"2026-11-22T09:10:25.123456Z",'
        '"organisation":"acme","pilot_id":null,"prev_hash":"' + "0" * 64 + '","request_id":"abc","sequence":7}'
    ).encode("utf-8")
    # Pinned: if this changes, every stored chain stops verifying.
    assert chain.event_hash(FIXED) == "14a42d13f5e71305f56882ed2530839039a91caf9d40267947d987d8c12d6be9"


def test_values_are_normalised_before_hashing():
    value = {
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "d": dt.date(2026, 1, 2),
    }
    assert chain.to_jsonable(value) == {"when": "2026-01-02T01:04:05.000006Z", "d": "2026-01-02"}
    assert chain.to_jsonable(Decimal("0.0100")) == "0.0100"
    with pytest.raises(TypeError):
        chain.to_jsonable(0.1)


def _event(org, sequence):
    return AuditEvent.objects.get(organisation=org, sequence=sequence)


def _raw(sql: str, params: list) -> None:
    """Run SQL as an attacker with database access would: bypassing the append-only trigger."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What a superuser can do: run with user triggers switched off.
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


def test_an_intact_chain_verifies_and_records_the_badge(busy_org):
    result = audit_verify(organisation=busy_org)
    assert result.ok, result.problem
    assert result.files_checked == 1
    assert result.head_sequence == AuditEvent.objects.filter(organisation=busy_org).count()
    badge = integrity_badge(organisation=busy_org)
    assert badge.verified_ok and badge.verified_head == result.head_sequence


def test_a_field_edited_in_the_database_is_located(busy_org):
    _raw(
        "UPDATE audit_auditevent SET actor_label = %s WHERE organisation_id = %s AND sequence = %s",
        ["mallory", busy_org.pk, 5],
    )
    result = audit_verify(organisation=busy_org)
    assert (result.problem.sequence, result.problem.kind) == (5, "hash mismatch")
    assert AuditVerification.objects.latest("verified_at").first_bad_sequence == 5


def test_a_deleted_event_is_a_gap(busy_org):
    _raw("DELETE FROM audit_auditevent WHERE organisation_id = %s AND sequence = %s", [busy_org.pk, 6])
    result = audit_verify(organisation=busy_org)
    assert (result.problem.sequence, result.problem.kind) == (6, "gap in sequence")


def test_a_forged_event_appended_behind_the_apps_back_is_detected(busy_org):
    head = AuditChainHead.objects.get(organisation=busy_org)
    record = {
        "organisation": busy_org.slug, "sequence": head.sequence + 1, "occurred_at": "2026-11-22T10:00:00.000000Z",
        "actor_type": "user", "actor_id": "1", "actor_label": "owner", "action": "response.updated",
        "object_type": "response", "object_id": "1", "pilot_id": None, "changes": {}, "request_id": "",
        "prev_hash": head.hash,
    }  # fmt: skip
    AuditEvent.objects.create(
        organisation=busy_org, occurred_at=dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC), hash=chain.event_hash(record),
        **{k: v for k, v in record.items() if k not in {"organisation", "occurred_at"}},
    )  # fmt: skip
    result = audit_verify(organisation=busy_org)
    assert not result.ok
    assert result.problem.sequence == head.sequence + 1


def test_two_swapped_events_are_located(busy_org):
    a, b = _event(busy_org, 3), _event(busy_org, 4)
    _raw("UPDATE audit_auditevent SET sequence = %s WHERE id = %s", [1_000_000, a.pk])
    _raw("UPDATE audit_auditevent SET sequence = %s WHERE id = %s", [3, b.pk])
    _raw("UPDATE audit_auditevent SET sequence = %s WHERE id = %s", [4, a.pk])
    result = audit_verify(organisation=busy_org)
    assert result.problem.sequence == 3
    assert result.problem.kind in {"broken link", "hash mismatch"}


def test_a_truncated_tail_is_caught_by_the_checkpoint(busy_org, signing_key):
    checkpoint_create(organisation=busy_org)
    head = AuditChainHead.objects.get(organisation=busy_org)
    _raw("DELETE FROM audit_auditevent WHERE organisation_id = %s AND sequence > %s", [busy_org.pk, head.sequence - 3])
    # A careful attacker also rewinds the head table.
    last = _event(busy_org, head.sequence - 3)
    AuditChainHead.objects.filter(pk=head.pk).update(sequence=last.sequence, hash=last.hash)
    result = audit_verify(organisation=busy_org)
    assert (result.problem.kind, result.problem.sequence) == ("head behind checkpoint", head.sequence - 2)


def test_a_chain_recomputed_after_an_edit_is_caught_by_the_checkpoint(busy_org, signing_key):
    checkpoint_create(organisation=busy_org)
    # Rewrite event 4 and recompute every later hash so the chain is self-consistent again.
    prev = _event(busy_org, 3).hash
    for event in AuditEvent.objects.filter(organisation=busy_org, sequence__gte=4).order_by("sequence"):
        record = {
            "organisation": busy_org.slug, "sequence": event.sequence,
            "occurred_at": chain.format_datetime(event.occurred_at),
            "actor_type": event.actor_type, "actor_id": event.actor_id,
            "actor_label": "mallory" if event.sequence == 4 else event.actor_label, "action": event.action,
            "object_type": event.object_type, "object_id": event.object_id, "pilot_id": event.pilot_id,
            "changes": event.changes, "request_id": event.request_id, "prev_hash": prev,
        }  # fmt: skip
        prev = chain.event_hash(record)
        _raw(
            "UPDATE audit_auditevent SET actor_label = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [record["actor_label"], record["prev_hash"], prev, event.pk],
        )
    AuditChainHead.objects.filter(organisation=busy_org).update(hash=prev)
    assert audit_verify(organisation=busy_org, checkpoint=None, record_result=False).problem is not None
    result = audit_verify(organisation=busy_org)
    assert result.problem.kind == "hash mismatch"
    assert "rewritten after the signed checkpoint" in result.problem.detail


def test_a_replaced_or_missing_evidence_file_is_located(busy_org):
    evidence = Evidence.objects.get(kind="file")
    added = AuditEvent.objects.get(organisation=busy_org, action="evidence.added")
    with default_storage.open(evidence.file.name, "wb") as handle:
        handle.write(b"case,ok\n1,false\n")
    result = audit_verify(organisation=busy_org)
    assert (result.problem.sequence, result.problem.kind) == (added.sequence, "file hash mismatch")
    default_storage.delete(evidence.file.name)
    result = audit_verify(organisation=busy_org)
    assert (result.problem.sequence, result.problem.kind) == (added.sequence, "missing file")


def test_a_checkpoint_with_a_bad_signature_is_refused(busy_org, signing_key):
    checkpoint = checkpoint_create(organisation=busy_org).payload
    forged = {**checkpoint, "sequence": checkpoint["sequence"] - 5}
    result = audit_verify(organisation=busy_org, checkpoint=forged, record_result=False)
    assert result.problem.kind == "bad checkpoint signature"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from assessments.audit.signing import key_id, public_key_b64

    other = Ed25519PrivateKey.generate()
    foreign = {**checkpoint, "key_id": key_id(other.public_key()), "public_key": public_key_b64(other.public_key())}
    import base64

    foreign["signature"] = base64.b64encode(other.sign(chain.checkpoint_message(foreign))).decode()
    result = audit_verify(organisation=busy_org, checkpoint=foreign, record_result=False)
    assert result.problem.kind == "untrusted checkpoint key"
    assert "which is not trusted" in result.problem.detail


def test_the_standalone_verifier_agrees_with_the_app(busy_org, signing_key, tmp_path, settings):
    checkpoint = checkpoint_create(organisation=busy_org)
    export = tmp_path / "events.jsonl"
    with export.open("wb") as handle:
        count = audit_export(organisation=busy_org, out=handle)
    cp_file = tmp_path / "cp.json"
    cp_file.write_text(json.dumps(checkpoint.payload), encoding="utf-8")
    args = [
        str(export),
        "--checkpoint",
        str(cp_file),
        "--files-dir",
        str(settings.MEDIA_ROOT),
        "--organisation",
        busy_org.slug,
        "--trusted-key",
        checkpoint.key_id,
    ]
    assert chain.main(args) == 0
    # After the header, each line is exactly the canonical bytes the database's hash covers.
    header, *lines = export.read_bytes().splitlines()
    assert json.loads(header)["head_sequence"] == count
    stored = list(AuditEvent.objects.filter(organisation=busy_org).order_by("sequence").values_list("hash", flat=True))
    assert [hashlib.sha256(line).hexdigest() for line in lines] == stored
    assert [chain.event_hash(json.loads(line)) for line in lines] == stored
    assert count == AuditEvent.objects.filter(organisation=busy_org).count()
    record = json.loads(lines[2])
    record["changes"] = {"tampered": [None, True]}
    lines[2] = json.dumps(record).encode()
    export.write_bytes(b"\n".join([header, *lines]) + b"\n")
    assert chain.main(args) == 1


def test_an_export_line_rewritten_with_the_same_values_fails(busy_org, tmp_path):
    """Hashed as stored: the same values spelled differently (here, with a space) are different bytes."""
    export = tmp_path / "events.jsonl"
    with export.open("wb") as handle:
        audit_export(organisation=busy_org, out=handle)
    header, *lines = export.read_bytes().splitlines()
    spaced = lines[3].replace(b'{"action":"', b'{"action": "', 1)
    assert spaced != lines[3] and json.loads(spaced) == json.loads(lines[3])
    lines[3] = spaced
    export.write_bytes(b"\n".join([header, *lines]) + b"\n")
    _, records = chain.read_export(export, organisation=busy_org.slug)
    result = chain.verify_records(records, organisation=busy_org.slug)
    assert (result.problem.sequence, result.problem.kind) == (4, "hash mismatch")


def test_an_older_export_still_verifies(busy_org, tmp_path):
    """Format 1: every line a JSON object of the hashed fields plus hash, re-encoded by the verifier."""
    from assessments.audit.verify import event_records

    export = tmp_path / "old.jsonl"
    export.write_text(
        "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in event_records(organisation=busy_org)),
        encoding="utf-8",
    )
    assert chain.main([str(export), "--organisation", busy_org.slug]) == 0
    lines = export.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4].replace('"action": "', '"action": "x')
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    header, records = chain.read_export(export, organisation=busy_org.slug)
    assert header is None
    result = chain.verify_records(records, organisation=busy_org.slug)
    assert (result.problem.sequence, result.problem.kind) == (5, "hash mismatch")


def test_audit_verify_command_exit_codes(busy_org, capsys):
    call_command("audit_verify", "--org", busy_org.slug, stdout=io.StringIO())
    _raw("UPDATE audit_auditevent SET action = %s WHERE organisation_id = %s AND sequence = %s", ["x", busy_org.pk, 2])
    err = io.StringIO()
    with pytest.raises(SystemExit) as excinfo:
        call_command("audit_verify", "--org", busy_org.slug, stderr=err)
    assert excinfo.value.code == 1
    assert "first bad sequence 2: hash mismatch" in err.getvalue()


def test_the_hourly_task_signs_only_intact_chains(busy_org, signing_key):
    from assessments.audit.models import AuditCheckpoint
    from assessments.audit.tasks import audit_checkpoint_all

    assert audit_checkpoint_all() == 1
    assert AuditCheckpoint.objects.filter(organisation=busy_org).count() == 1
    _raw("UPDATE audit_auditevent SET action = %s WHERE organisation_id = %s AND sequence = %s", ["x", busy_org.pk, 2])
    assert audit_checkpoint_all() == 0
    assert AuditCheckpoint.objects.filter(organisation=busy_org).count() == 1


@pytest.mark.postgres
def test_the_database_refuses_update_and_delete_of_events(busy_org):
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL")
    from django.db import DatabaseError

    for sql in (
        "UPDATE audit_auditevent SET action = 'x' WHERE sequence = 1",
        "DELETE FROM audit_auditevent WHERE sequence = 1",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.filter(organisation=busy_org, sequence=1).exclude(action="x").exists()


@pytest.mark.parametrize("chunk", [1, 700, 4000])
def test_an_export_read_in_many_chunks_verifies_and_locates_problems(busy_org, tmp_path, settings, monkeypatch, chunk):
    """Chunks of one line, a few lines, and many: the bulk check and the line-by-line fallback agree."""
    monkeypatch.setattr(chain, "EXPORT_CHUNK", chunk)
    export = tmp_path / "events.jsonl"
    with export.open("wb") as handle:
        count = audit_export(organisation=busy_org, out=handle)
    args = [str(export), "--organisation", busy_org.slug, "--files-dir", str(settings.MEDIA_ROOT)]
    _, records = chain.read_export(export, organisation=busy_org.slug)
    result = chain.verify_records(records, organisation=busy_org.slug, file_hasher=lambda name: "x")
    added = AuditEvent.objects.get(organisation=busy_org, action="evidence.added").sequence
    # The evidence event is found in whichever chunk it falls, even as a chunk's first line.
    assert (result.problem.sequence, result.problem.kind) == (added, "file hash mismatch")
    assert chain.main(args) == 0
    header, *lines = export.read_bytes().splitlines(keepends=True)
    edited = [*lines]
    edited[count - 3] = edited[count - 3].replace(b'"actor_type":"', b'"actor_type":"x', 1)
    export.write_bytes(header + b"".join(edited))
    _, records = chain.read_export(export, organisation=busy_org.slug)
    result = chain.verify_records(records, organisation=busy_org.slug)
    assert (result.problem.sequence, result.problem.kind) == (count - 1, "broken link")
    export.write_bytes(header + b"".join(lines[:-1]))
    assert chain.main(args) == 1  # the last event cut off: the header's head no longer matches
