"""Linked systems, check rules and runs: credentials at rest, audited rules, one run per
claim, verdicts that reach readiness, regressions that tell the owner once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.evidence.credentials import CredentialsError, credentials_decrypt
from assessments.evidence.models import Check, CheckRun, LinkedSystem, RunStatus, Verdict
from assessments.evidence.services import (
    RUN_LEASE,
    check_create,
    check_run_execute,
    check_run_request,
    check_runs_queue_due,
    check_update,
    linked_system_create,
    linked_system_update,
)
from assessments.pilots.models import AssessmentScore, Pilot, Response
from assessments.pilots.selectors import scorecard
from assessments.pilots.services import evidence_add, pilot_create, response_update
from readiness.settings import BASE_DIR

FIXTURES = BASE_DIR / "fixtures" / "evidence"


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )


@pytest.fixture
def criterion(pilot):
    return Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion


def _eval_system(pilot, actor, fixture: str = "junit-goldenset-pass.xml", **extra) -> LinkedSystem:
    return linked_system_create(
        pilot=pilot, actor=actor, kind="eval_results", name="Golden set", configuration={"fixture": fixture}, **extra
    )


def _check(system, criterion, actor, **rule: Any) -> Check:
    values: dict[str, Any] = {"name": "Golden-set pass rate", "metric": "pass_rate", "comparator": "gte"}
    values |= {"threshold": 0.9} | rule
    return check_create(system=system, criterion=criterion, actor=actor, **values)


def _run(check: Check, actor: Actor) -> CheckRun:
    run = check_run_request(check=check, actor=actor)
    finished = check_run_execute(run_id=run.pk)
    assert finished is not None
    return finished


# --- credentials -----------------------------------------------------------------------


def test_credentials_are_encrypted_bound_to_their_row_and_rotated(pilot, owner_actor, settings):
    first = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="github", name="Repo", configuration={"repository": "acme/claims"},
        secrets={"token": "ghp_secret_value"},
    )  # fmt: skip
    second = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="github", name="Repo 2", configuration={"repository": "acme/other"}
    )
    first.refresh_from_db()
    assert "ghp_secret_value" not in first.credentials
    assert credentials_decrypt(row_id=first.pk, ciphertext=first.credentials) == {"token": "ghp_secret_value"}
    # Copied to another row, the ciphertext is refused, not decrypted.
    with pytest.raises(CredentialsError, match="another linked system"):
        credentials_decrypt(row_id=second.pk, ciphertext=first.credentials)
    # The secret is in no audit event.
    assert not AuditEvent.objects.filter(changes__icontains="ghp_secret_value").exists()

    old_key = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [old_key]
    linked_system_update(system=first, actor=owner_actor, secrets={"token": "rotated-token"})
    new_key = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [new_key, old_key]
    call_command("credentials_rotate")
    settings.CREDENTIALS_KEYS = [new_key]  # the old key is gone: rotation must have re-encrypted
    first.refresh_from_db()
    assert credentials_decrypt(row_id=first.pk, ciphertext=first.credentials) == {"token": "rotated-token"}
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CredentialsError, match="cannot be decrypted"):
        credentials_decrypt(row_id=first.pk, ciphertext=first.credentials)


def test_a_wrong_key_fails_the_run_with_a_clear_message(pilot, owner_actor, criterion, settings):
    system = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="http_json", name="Scores",
        configuration={"url": "https://scores.example.com/x", "json_path": "a"}, secrets={"token": "t"},
    )  # fmt: skip
    check = _check(system, criterion, owner_actor, metric="value")
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    run = _run(check, owner_actor)
    assert run.status == RunStatus.FAILED and "cannot be decrypted" in run.message


# --- rules and runs --------------------------------------------------------------------


def test_a_rule_change_is_audited_with_old_and_new_before_any_run(pilot, owner_actor, criterion, users):
    check = _check(_eval_system(pilot, owner_actor), criterion, owner_actor)
    created = AuditEvent.objects.filter(action="check.created", object_id=str(check.pk)).get()
    assert created.changes["threshold"] == [None, "0.9"]
    check_update(check=check, actor=owner_actor, threshold=0.5)
    changed = AuditEvent.objects.filter(action="check.rule_changed", object_id=str(check.pk)).get()
    assert changed.changes == {"threshold": ["0.9", "0.5"]}
    check.refresh_from_db()
    assert check.rule_version == 2 and check.rule_changed_by == users["owner"]
    run = _run(check, owner_actor)
    assert run.rule["threshold"] == 0.5 and run.rule["version"] == 2
    assert changed.sequence < AuditEvent.objects.get(action="check_run.finished", object_id=str(run.pk)).sequence


def test_only_the_pilots_editors_link_systems_and_write_rules(pilot, users, criterion, owner_actor):
    viewer = Actor.for_user(users["viewer"])
    with pytest.raises(PermissionDenied):
        _eval_system(pilot, viewer)
    check = _check(_eval_system(pilot, owner_actor), criterion, owner_actor)
    with pytest.raises(PermissionDenied):
        check_update(check=check, actor=viewer, threshold=0.1)


def test_a_fixture_outside_the_demo_directory_is_refused(pilot, owner_actor):
    for name in ("../../readiness/settings.py", "/etc/passwd", "missing.xml"):
        with pytest.raises(ValidationError, match="not one of the demo evidence files"):
            _eval_system(pilot, owner_actor, fixture=name)
    assert not LinkedSystem.objects.exists()


def test_a_run_reads_the_real_file_and_judges_the_rule(pilot, owner_actor, criterion):
    check = _check(_eval_system(pilot, owner_actor), criterion, owner_actor)
    run = _run(check, owner_actor)
    data = (FIXTURES / "junit-goldenset-pass.xml").read_bytes()
    assert run.status == RunStatus.OK and run.verdict == Verdict.PASS
    assert run.payload_size == len(data) and len(run.payload_sha256) == 64
    assert run.facts["metrics"]["total"] > 0 and "pass_rate" in run.message
    assert AuditEvent.objects.filter(action="check_run.finished", object_id=str(run.pk)).count() == 1


def test_a_duplicate_delivery_does_nothing_and_a_dead_workers_run_is_taken_over(pilot, owner_actor, criterion):
    check = _check(_eval_system(pilot, owner_actor), criterion, owner_actor)
    run = check_run_request(check=check, actor=owner_actor)
    assert check_run_request(check=check, actor=owner_actor).pk == run.pk  # one open run per check
    # A worker claimed it and died (SIGKILL): still "running".
    CheckRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=timezone.now(), attempts=1)
    assert check_run_execute(run_id=run.pk) is None  # a live lease: the redelivery does nothing
    later = timezone.now() + RUN_LEASE + dt.timedelta(seconds=1)
    assert check_run_execute(run_id=run.pk, now=later) is not None
    assert check_run_execute(run_id=run.pk, now=later) is None  # finished: nothing to do
    assert CheckRun.objects.filter(check_rule=check).count() == 1
    assert AuditEvent.objects.filter(object_type="check_run").count() == 1


def test_the_dispatcher_queues_due_checks_once(pilot, owner_actor, criterion):
    check = _check(_eval_system(pilot, owner_actor), criterion, owner_actor)
    first = check_runs_queue_due()
    assert len(first) == 1 and check_runs_queue_due() == []  # already open
    check_run_execute(run_id=first[0])
    check.refresh_from_db()
    assert check.next_run_at > timezone.now() + dt.timedelta(minutes=59)
    assert check_runs_queue_due() == []  # not due again for an hour


def test_a_missing_metric_fails_the_run_instead_of_passing(pilot, owner_actor, criterion):
    check = _check(_eval_system(pilot, owner_actor), criterion, owner_actor, metric="no_such_metric")
    run = _run(check, owner_actor)
    assert run.status == RunStatus.FAILED and "no 'no_such_metric'" in run.message


def test_a_pinned_dataset_that_changed_fails(pilot, owner_actor, criterion):
    check = _check(_eval_system(pilot, owner_actor), criterion, owner_actor, dataset_fingerprint="golden-set-v2")
    run = _run(check, owner_actor)
    assert run.verdict == Verdict.FAIL and "not the pinned 'golden-set-v2'" in run.message


# --- readiness -------------------------------------------------------------------------


def test_a_failing_check_blocks_a_criterion_marked_met_and_a_passing_one_is_evidence(pilot, owner_actor, criterion):
    response = Response.objects.get(assessment__pilot=pilot, criterion=criterion)
    response_update(response=response, actor=owner_actor, expected_version=response.version, status="met")
    today = timezone.localdate()
    reasons = " ".join(scorecard(assessment=response.assessment, today=today).reasons)
    assert "EV-03" in reasons and "no evidence" in reasons

    system = _eval_system(pilot, owner_actor)
    check = _check(system, criterion, owner_actor, threshold=0.5)
    _run(check, owner_actor)
    card = scorecard(assessment=response.assessment, today=today)
    assert not any(b.code == "EV-03" for b in card.blockers), "a passing check is current evidence"

    check_update(check=check, actor=owner_actor, threshold=1.01)  # now impossible to meet
    failed = _run(check, owner_actor)
    card = scorecard(assessment=response.assessment, today=today)
    blocker = next(b for b in card.blockers if b.code == "EV-03")
    assert "check “Golden-set pass rate” failing since" in blocker.reason
    # The cached scorecard moved in the same transaction as the run.
    stored = AssessmentScore.objects.get(assessment=response.assessment)
    assert stored.blockers == len(card.blockers) and stored.updated_at >= failed.finished_at
    # Manual evidence does not outvote a failing check.
    evidence_add(
        response=response, actor=owner_actor, kind="link", title="Dashboard", url="https://x.test",
        effective_date=today,
    )  # fmt: skip
    assert any(b.code == "EV-03" for b in scorecard(assessment=response.assessment, today=today).blockers)


def test_a_flip_from_pass_to_fail_is_a_regression_mailed_once(
    pilot, owner_actor, criterion, users, django_capture_on_commit_callbacks
):
    users["owner"].email = "owner@acme.test"
    users["owner"].save()
    system = _eval_system(pilot, owner_actor)
    check = _check(system, criterion, owner_actor, threshold=0.5, tolerance=0.05)
    first = _run(check, owner_actor)
    check.refresh_from_db()
    assert first.verdict == Verdict.PASS and check.baseline == first.value
    linked_system_update(system=system, actor=owner_actor, configuration={"fixture": "junit-goldenset-regression.xml"})
    finished = []
    for _ in range(2):
        run = check_run_request(check=check, actor=owner_actor)
        with django_capture_on_commit_callbacks(execute=True):  # the mail goes after the commit
            finished.append(check_run_execute(run_id=run.pk))
    second, third = finished
    assert second is not None and third is not None
    assert second.verdict == Verdict.FAIL and second.is_regression and "below its baseline" in second.message
    assert third.verdict == Verdict.FAIL and not third.is_regression
    assert [m.to for m in mail.outbox] == [["owner@acme.test"]]
    assert "now fails" in mail.outbox[0].subject
    assert AuditEvent.objects.filter(action="check_run.regressed").count() == 1


def test_an_uploaded_file_is_stored_with_its_hash(pilot, owner_actor, criterion):
    data = (FIXTURES / "promptfoo-goldenset-pass.json").read_bytes()
    system = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="eval_results", name="Uploaded",
        upload=SimpleUploadedFile("results.json", data),
    )  # fmt: skip
    assert system.upload_name == "results.json" and len(system.upload_sha256) == 64
    run = _run(_check(system, criterion, owner_actor, threshold=0.1), owner_actor)
    assert run.status == RunStatus.OK and run.payload_size == len(data)


def test_a_run_that_repeats_the_last_outcome_on_the_same_day_leaves_the_scores_alone(
    pilot, owner_actor, criterion, monkeypatch
):
    from assessments.evidence import services

    refreshed: list[list[int]] = []
    real = services.scores_refresh

    def spy(*, assessment_ids, today):
        refreshed.append(list(assessment_ids))
        return real(assessment_ids=assessment_ids, today=today)

    monkeypatch.setattr(services, "scores_refresh", spy)
    check = _check(_eval_system(pilot, owner_actor), criterion, owner_actor)
    now = timezone.now()
    for at in (now, now + dt.timedelta(minutes=5), now + dt.timedelta(days=1)):
        run = check_run_request(check=check, actor=owner_actor)
        assert check_run_execute(run_id=run.pk, now=at) is not None
    # the first pass and the next day's pass (its evidence date moved) rescore; the repeat does not
    assert len(refreshed) == 2
    linked_system_update(
        system=check.linked_system, actor=owner_actor, configuration={"fixture": "junit-goldenset-regression.xml"}
    )
    check_update(check=check, actor=owner_actor, threshold=0.99)
    run = check_run_request(check=check, actor=owner_actor)
    check_run_execute(run_id=run.pk, now=now + dt.timedelta(days=1, minutes=5))
    assert len(refreshed) == 3  # pass → fail rescores at once
