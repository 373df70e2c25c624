"""Seals on rules and outcomes: what an edit made outside the services looks like to
readiness and on the page, and re-sealing after the key changes."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from assessments.evidence.models import Check, CheckRun, RunStatus, Verdict
from assessments.evidence.selectors import check_outcomes
from assessments.evidence.services import check_create, check_run_execute, check_run_request, linked_system_create
from assessments.pilots.models import Response
from assessments.pilots.services import pilot_create


@pytest.fixture
def check(framework, users, owner_actor) -> Check:
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )
    system = linked_system_create(
        pilot=pilot, actor=owner_actor, kind="eval_results", name="Golden set",
        configuration={"fixture": "junit-goldenset-regression.xml"},
    )  # fmt: skip
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    return check_create(
        system=system, criterion=criterion, actor=owner_actor, name="Pass rate", metric="pass_rate",
        comparator="gte", threshold=0.99,
    )  # fmt: skip


def _sql(statement: str, *params: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_a_verdict_altered_in_the_database_shows_as_altered_and_counts_as_unreadable(
    client, users, check, owner_actor
) -> None:
    run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert run is not None and run.verdict == Verdict.FAIL and run.is_sealed
    _sql("UPDATE evidence_checkrun SET verdict = 'pass' WHERE id = %s", run.pk)

    pilot_id = check.linked_system.pilot_id
    (outcome,) = check_outcomes(pilot_ids=[pilot_id])[(pilot_id, check.criterion_id)]
    assert outcome.state == "error" and "changed outside Preflight" in outcome.message
    client.force_login(users["viewer"])
    page = client.get(reverse("linked-systems", args=[pilot_id])).content.decode()
    assert "Record altered" in page


def test_a_rule_altered_in_the_database_is_not_run_until_saved_again(check, owner_actor) -> None:
    _sql("UPDATE evidence_check SET threshold = 0 WHERE id = %s", check.pk)
    run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert run is not None and run.status == RunStatus.FAILED
    assert "changed outside Preflight" in run.message
    assert run.rule["threshold"] == 0  # the run records the rule it refused


def test_after_the_key_changes_a_reseal_vouches_for_the_rows_again(check, owner_actor, settings, capsys) -> None:
    run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert run is not None
    settings.SECRET_KEY = "a-new-secret-key-for-this-installation-" + "x" * 30
    assert not CheckRun.objects.get(pk=run.pk).is_sealed
    call_command("evidence_reseal")
    assert "Re-sealed 1 check rule(s) and 1 finished run(s)" in capsys.readouterr().out
    assert CheckRun.objects.get(pk=run.pk).is_sealed
    again = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert again is not None and again.status == RunStatus.OK


@pytest.mark.django_db(transaction=True)
def test_the_seal_migration_seals_the_rows_a_populated_database_already_holds(check, owner_actor) -> None:
    from django.db.migrations.executor import MigrationExecutor

    if connection.vendor != "postgresql":
        pytest.skip("the migration is exercised on PostgreSQL")
    run = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert run is not None
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("evidence", "0002_alert_webhook")])  # the columns are gone
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)  # added back empty, then sealed by the migration
    assert Check.objects.get(pk=check.pk).rule_seal != ""
    assert CheckRun.objects.get(pk=run.pk).is_sealed
    again = check_run_execute(run_id=check_run_request(check=check, actor=owner_actor).pk)
    assert again is not None and again.status == RunStatus.OK
