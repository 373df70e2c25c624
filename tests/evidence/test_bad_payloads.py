"""Whole runs against a system that starts answering badly: each bad answer ends in a failed
run with words a person can act on, after retries only where retrying can help, and the
earlier passing run, its evidence and the criterion's manual evidence stay exactly as they were."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from assessments.evidence.models import Check, CheckRun, RunStatus, Verdict
from assessments.evidence.selectors import check_outcomes
from assessments.evidence.services import (
    MAX_ATTEMPTS,
    RunRetry,
    check_create,
    check_run_execute,
    check_run_request,
    linked_system_create,
)
from assessments.pilots.models import Evidence, Response
from assessments.pilots.services import evidence_add, pilot_create
from tests.evidence.http_replay import Reply, replay_server

GOOD = Reply(200, b'{"data": {"pass_rate": 0.97, "cases": 412}}', {"Content-Type": "application/json"})

BAD: dict[str, tuple[Reply, str, bool]] = {
    "truncated JSON": (Reply(200, b'{"data": {"pass_rate": 0.9', {}), "JSON that does not parse", False),
    "wrong schema": (Reply(200, b'["unexpected"]', {}), "expected an object at $", False),
    "missing field": (Reply(200, b'{"data": {"cases": 412}}', {}), "pass_rate", False),
    "HTML error page": (
        Reply(200, b"<!DOCTYPE html><html><head><title>Sign in</title></head></html>", {"Content-Type": "text/html"}),
        "HTML page",
        False,
    ),
    "10 MB of garbage": (Reply(200, bytes(range(256)) * 40960, {}), "allowed; nothing was read", False),
    "redirect loop": (Reply(302, b"", {"Location": "/scores"}), "redirects in a loop", False),
    "500": (Reply(500, b"Internal Server Error", {}), "answered 500", True),
    "timeout": (Reply(200, b"{}", delay=1.5), "did not answer in time", True),
}


@pytest.fixture
def setup(settings, framework, users, owner_actor):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.OUTBOUND_TIMEOUT_SECONDS = 0.5
    settings.OUTBOUND_MAX_BYTES = 1024 * 1024
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )
    response = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03")
    evidence_add(
        response=response, actor=owner_actor, kind="link", title="Eval dashboard",
        url="https://evals.example.com/run/1", effective_date=timezone.localdate() - dt.timedelta(days=2),
    )  # fmt: skip
    return pilot, response


def _run_to_the_end(check: Check, actor: Any) -> tuple[CheckRun, int]:
    """Execute like the worker: retry a transient failure until the run finishes."""
    run = check_run_request(check=check, actor=actor)
    retries = 0
    while True:
        try:
            finished = check_run_execute(run_id=run.pk)
        except RunRetry:
            retries += 1
            continue
        assert finished is not None
        return finished, retries


@pytest.mark.parametrize("answer", BAD)
def test_a_bad_answer_fails_the_run_in_words_and_keeps_what_was_there(setup, owner_actor, answer) -> None:
    pilot, response = setup
    reply, words, transient = BAD[answer]
    with replay_server(fallback=GOOD) as server:
        system = linked_system_create(
            pilot=pilot, actor=owner_actor, kind="http_json", name="Scores",
            configuration={"url": f"{server.url}/scores", "json_path": "data.pass_rate"},
        )  # fmt: skip
        check = check_create(
            system=system, criterion=response.criterion, actor=owner_actor, name="Pass rate", metric="value",
            comparator="gte", threshold=0.95,
        )  # fmt: skip
        good, _ = _run_to_the_end(check, owner_actor)
        assert good.verdict == Verdict.PASS
        kept = CheckRun.objects.filter(pk=good.pk).values().get()
        manual = list(Evidence.objects.filter(response=response).values())

        server.fallback = reply
        bad, retries = _run_to_the_end(check, owner_actor)

    assert bad.status == RunStatus.FAILED and bad.verdict == ""
    assert words in bad.message, bad.message
    assert retries == (MAX_ATTEMPTS - 1 if transient else 0)
    assert bad.attempts == (MAX_ATTEMPTS if transient else 1)
    assert CheckRun.objects.filter(pk=good.pk).values().get() == kept
    assert list(Evidence.objects.filter(response=response).values()) == manual
    check.refresh_from_db()
    assert check.latest_run_id == bad.pk and check.failing_since == bad.finished_at
    (outcome,) = check_outcomes(pilot_ids=[pilot.pk])[(pilot.pk, response.criterion_id)]
    assert outcome.state == "error"
