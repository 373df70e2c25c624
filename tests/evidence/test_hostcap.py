"""The per-host cap: a run that would be one too many against a host waits, loses nothing,
and does not count as an attempt; a dead worker's slot expires with the run lease."""

from __future__ import annotations

import time

import pytest

from assessments.audit.models import AuditEvent
from assessments.evidence.hostcap import host_slot, slot_release, slot_take, slots_held, target_host
from assessments.evidence.models import CheckRun, RunStatus
from assessments.evidence.services import (
    RunRetry,
    check_create,
    check_run_execute,
    check_run_request,
    linked_system_create,
)
from assessments.pilots.models import Response
from assessments.pilots.services import pilot_create


@pytest.fixture
def cap(settings, redis_url):
    """A cap of two against real Redis, on a host name no other test uses."""
    import redis

    settings.REDIS_URL = redis_url
    settings.OUTBOUND_MAX_PER_HOST = 2
    host = f"metrics-{time.monotonic_ns()}.example.test"
    yield host
    redis.Redis.from_url(redis_url).delete(f"preflight:hostcap:{host}")


def test_each_kind_names_the_host_its_runs_reach() -> None:
    assert target_host(kind="github", configuration={}, file_backed=False) == "api.github.com"
    assert target_host(kind="pagerduty", configuration={}, file_backed=False) == "api.pagerduty.com"
    enterprise = {"api_url": "https://GHE.Corp.example/api/v3", "repository": "a/b"}
    assert target_host(kind="github", configuration=enterprise, file_backed=False) == "ghe.corp.example"
    assert target_host(kind="http_json", configuration={"url": "http://10.0.0.1:8080/x"}, file_backed=False) == (
        "10.0.0.1"
    )
    assert target_host(kind="eval_results", configuration={"fixture": "a.xml"}, file_backed=True) is None
    assert target_host(kind="eval_results", configuration={"url": "http://[::1"}, file_backed=False) is None


def test_no_more_than_the_cap_hold_a_host_and_a_released_slot_is_free_again(cap) -> None:
    first = slot_take(host=cap, lease_seconds=60)
    second = slot_take(host=cap, lease_seconds=60)
    assert first and second and first != second
    assert slot_take(host=cap, lease_seconds=60) is None
    assert slots_held(host=cap) == 2
    slot_release(host=cap, token=first)
    assert slot_take(host=cap, lease_seconds=60) is not None
    # another host is counted on its own
    assert slot_take(host=f"other-{cap}", lease_seconds=1) is not None


def test_a_dead_workers_slot_expires_with_its_lease(cap) -> None:
    assert slot_take(host=cap, lease_seconds=0.3)
    assert slot_take(host=cap, lease_seconds=0.3)
    assert slot_take(host=cap, lease_seconds=0.3) is None
    time.sleep(0.4)
    assert slot_take(host=cap, lease_seconds=60) is not None


def test_the_slot_is_given_back_when_the_block_raises(cap) -> None:
    with pytest.raises(RuntimeError), host_slot(host=cap, lease_seconds=60):
        assert slots_held(host=cap) == 1
        raise RuntimeError("connector blew up")
    assert slots_held(host=cap) == 0


def test_a_run_against_a_full_host_goes_back_to_the_queue_without_spending_an_attempt(
    cap, framework, users, owner_actor
) -> None:
    pilot = pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    system = linked_system_create(
        pilot=pilot,
        actor=owner_actor,
        kind="http_json",
        name="Scores",
        configuration={"url": f"https://{cap}/scores", "json_path": "$.pass_rate"},
    )
    check = check_create(
        system=system,
        criterion=criterion,
        actor=owner_actor,
        name="Pass rate",
        metric="value",
        comparator="gte",
        threshold=0.9,
    )
    run = check_run_request(check=check, actor=owner_actor)
    held = [slot_take(host=cap, lease_seconds=60), slot_take(host=cap, lease_seconds=60)]
    events = AuditEvent.objects.count()

    with pytest.raises(RunRetry) as caught:
        check_run_execute(run_id=run.pk)

    assert "already has 2 checks running" in caught.value.args[0]
    assert 0.5 <= caught.value.countdown <= 2.0
    run.refresh_from_db()
    assert (run.status, run.attempts, run.started_at) == (RunStatus.QUEUED, 0, None)
    assert CheckRun.objects.filter(check_rule=check).count() == 1
    assert AuditEvent.objects.count() == events
    assert slots_held(host=cap) == 2  # the waiting run took nothing
    for token in held:
        assert token is not None
        slot_release(host=cap, token=token)
