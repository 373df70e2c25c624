"""The job policy (readiness/jobs.py) against real workers, Redis and PostgreSQL.

A worker killed mid-job must not lose the job, a job that cannot reach the
database must be retried rather than dropped, and any other failure must be
logged and dropped, not retried.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from assessments.pilots import tasks as pilot_tasks
from assessments.pilots.models import AssessmentScore
from assessments.pilots.services import pilot_create
from readiness.celery import app as celery_app
from readiness.jobs import TRANSIENT_ERRORS, Job

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--without-mingle", "--without-gossip", "--without-heartbeat"]


def _wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")


def _database_url(**query: str) -> str:
    """The test database as a URL for a worker; ``query`` becomes connection options."""
    db = connection.settings_dict
    login = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    url = f"postgresql://{login}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return url + (f"?{urlencode(query, quote_via=quote)}" if query else "")


def _sessions_waiting_for_a_lock() -> list[tuple[int]]:
    # Asked on the test's own autocommit connection: within one transaction
    # PostgreSQL would keep showing the first snapshot of pg_stat_activity.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return list(cursor.fetchall())


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Worker:
    """A `celery worker` subprocess consuming one private queue, its log in a file."""

    def __init__(self, *, queue: str, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._file = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "readiness",
                "worker",
                "-Q",
                queue,
                "--pool=solo",
                "-l",
                "INFO",
                *QUIET,
            ],
            cwd=ROOT,
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._file.close()


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def queue(broker: redis.Redis) -> Iterator[str]:
    """A queue no other worker reads; emptied afterwards, including unacknowledged copies."""
    name = f"test-jobs-{os.getpid()}-{time.time_ns()}"
    yield name
    broker.delete(name)
    for tag in _unacked(broker, name):
        broker.hdel("unacked", tag)
        broker.zrem("unacked_index", tag)


def _unacked(broker: redis.Redis, queue: str) -> dict[str, dict[str, Any]]:
    """Messages a worker has taken from ``queue`` but not acknowledged, by delivery tag."""
    found = {}
    for tag, raw in broker.hgetall("unacked").items():
        message, _exchange, routing_key = json.loads(raw)
        if routing_key == queue:
            found[str(tag)] = message
    return found


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "readiness.settings",
        "PREFLIGHT_VAR_DIR": str(tmp_path / "var"),
        "AUDIT_SIGNING_KEY_PATH": str(tmp_path / "audit-signing-key.pem"),
        "AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }


@pytest.fixture
def workers(tmp_path: Path, queue: str, worker_env: dict[str, str]) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(name: str, **env: str) -> Worker:
        worker = Worker(queue=queue, log=tmp_path / f"{name}.log", env={**worker_env, **env})
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def due_assessment(framework, users, owner_actor) -> int:
    """An assessment whose cached score was last computed yesterday."""
    pilot = pilot_create(organisation=framework.organisation, actor=owner_actor, name="Redelivered")
    assessment_id = pilot.assessments.get().pk
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    AssessmentScore.objects.filter(assessment_id=assessment_id).update(computed_on=yesterday)
    return assessment_id


def test_every_job_follows_the_house_policy(db):
    # Celery's Django fixup runs the system checks on import, which read the database.
    celery_app.loader.import_default_modules()
    jobs = {name: task for name, task in celery_app.tasks.items() if name.startswith("assessments.")}
    assert jobs, "no jobs were discovered"
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", settings.CELERY_VISIBILITY_TIMEOUT)
    for name, task in jobs.items():
        assert isinstance(task, Job), f"{name} is not declared with @job()"
        assert tuple(task.autoretry_for) == TRANSIENT_ERRORS, name
        assert task.acks_late and task.reject_on_worker_lost, name
        assert task.retry_jitter and task.retry_backoff and task.max_retries, name
        assert task.soft_time_limit < task.time_limit <= settings.CELERY_TASK_TIME_LIMIT, name
        # A retried job's message is held through its wait and its run; both must
        # end before Redis hands the message to another worker.
        assert task.retry_backoff_max + task.time_limit < visibility, name


def _settings_in_subprocess(**env: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import json; from readiness import settings as s; print(json.dumps([s.CELERY_VISIBILITY_TIMEOUT,"
        " s.CELERY_TASK_TIME_LIMIT, s.CELERY_TASK_SOFT_TIME_LIMIT, s.JOB_RETRY_BACKOFF_MAX,"
        " s.CELERY_BROKER_TRANSPORT_OPTIONS.get('visibility_timeout')]))"
    )
    base = {k: v for k, v in os.environ.items() if k != "CELERY_VISIBILITY_TIMEOUT"}
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, check=False
    )


def test_the_visibility_timeout_defaults_to_five_minutes_and_bounds_the_limits(tmp_path):
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "PREFLIGHT_VAR_DIR": str(tmp_path)}
    default = _settings_in_subprocess(**env)
    assert json.loads(default.stdout) == [300, 180, 150, 60, 300], default.stderr
    longer = _settings_in_subprocess(**env, CELERY_VISIBILITY_TIMEOUT="1800")
    assert json.loads(longer.stdout) == [1800, 1080, 900, 360, 1800], longer.stderr
    too_short = _settings_in_subprocess(**env, CELERY_VISIBILITY_TIMEOUT="5")
    assert too_short.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT must be at least 10 seconds" in too_short.stderr


@pytest.mark.django_db
def test_a_backlog_is_worked_through_in_chained_jobs(framework, users, owner_actor, settings, monkeypatch, caplog):
    for name in ("First", "Second", "Third"):
        pilot_create(organisation=framework.organisation, actor=owner_actor, name=name)
    today = timezone.localdate()
    AssessmentScore.objects.update(computed_on=today - dt.timedelta(days=1))
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0  # every batch overruns the budget
    monkeypatch.setattr(pilot_tasks, "BATCH_SIZE", 1)
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # run each continuation inline
    try:
        with caplog.at_level(logging.INFO, logger="assessments.pilots.tasks"):
            first_run = pilot_tasks.scores_refresh_due.apply().get()
    finally:
        celery_app.conf.task_always_eager = eager

    assert first_run == 1
    assert not AssessmentScore.objects.exclude(computed_on=today).exists()
    assert sum("continuing in a new job" in message for message in caplog.messages) == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_was_killed_is_redelivered_and_completes(due_assessment, broker, queue, workers):
    if connection.vendor != "postgresql":
        pytest.skip("the workers need a database they can share (PostgreSQL)")
    table = AssessmentScore._meta.db_table
    with psycopg.connect(
        _database_url(), autocommit=False
    ) as blocker:  # holds the score row so the job stops mid-way, inside its transaction
        blocker.execute(f"SELECT 1 FROM {table} WHERE assessment_id = %s FOR UPDATE", [due_assessment])
        first = workers("first", DATABASE_URL=_database_url())
        sent = pilot_tasks.scores_refresh_due.apply_async(queue=queue)

        waiting = _wait_for(_sessions_waiting_for_a_lock, 30, "the first worker to block on the score row")
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        # Its database session would otherwise linger until the lock came free.
        for (pid,) in waiting:
            blocker.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert len(_unacked(broker, queue)) == 1, "the killed worker's job should still be unacknowledged"
        blocker.commit()

    second = workers("second", DATABASE_URL=_database_url(), CELERY_VISIBILITY_TIMEOUT="10")
    _wait_for(
        lambda: AssessmentScore.objects.filter(assessment_id=due_assessment, computed_on=timezone.localdate()).exists(),
        45,
        "the second worker to run the redelivered job",
    )
    _wait_for(lambda: not _unacked(broker, queue), 10, "the redelivered job to be acknowledged")
    assert broker.llen(queue) == 0
    output = second.output()
    assert f"scores_refresh_due[{sent.id}] succeeded" in output, output
    assert "Traceback" not in output, output


def test_a_job_that_cannot_reach_the_database_is_retried_with_backoff(broker, queue, workers):
    worker = workers("unreachable", DATABASE_URL=f"postgres://preflight@127.0.0.1:{_closed_port()}/preflight")
    pilot_tasks.scores_refresh_due.apply_async(queue=queue)

    output = _wait_for(lambda: (text := worker.output()).count("retry: Retry in") >= 2 and text, 40, "two retries")

    assert "OperationalError" in output
    assert "will not be retried" not in output and "gave up" not in output, output

    def next_attempt() -> int:
        """The retry count of the job's next attempt, queued or held by the worker until its time."""
        waiting = [m["headers"]["retries"] for m in _unacked(broker, queue).values()]
        waiting += [json.loads(raw)["headers"]["retries"] for raw in broker.lrange(queue, 0, -1)]
        return max(waiting, default=0)

    assert _wait_for(lambda: next_attempt() >= 2, 10, "the job's next attempt in the broker")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_job_that_fails_for_another_reason_is_logged_and_not_retried(broker, queue, workers):
    if connection.vendor != "postgresql":
        pytest.skip("the worker needs a database it can share (PostgreSQL)")
    # A schema without Preflight's tables: the job's query fails with a ProgrammingError.
    worker = workers("wrong-schema", DATABASE_URL=_database_url(options="-c search_path=preflight_nowhere"))
    pilot_tasks.scores_refresh_due.apply_async(queue=queue)

    output = _wait_for(lambda: "will not be retried" in (text := worker.output()) and text, 30, "the failure log")
    _wait_for(lambda: not _unacked(broker, queue), 10, "the failed job to be acknowledged")

    assert "ProgrammingError" in output
    assert "retry: Retry in" not in output
    assert broker.llen(queue) == 0
