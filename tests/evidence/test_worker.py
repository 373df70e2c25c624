"""Check runs through real Celery workers over real Redis and PostgreSQL.

A sweep run by a worker finishes every due check exactly once, with one audit event per run,
and never puts more than OUTBOUND_MAX_PER_HOST requests on one host at a time. A worker
killed with SIGKILL in the middle of a run loses nothing and duplicates nothing: the
redelivered job finds the run still leased and leaves it alone, and once the lease has run
out the dispatcher queues it again and it finishes once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from assessments.audit.models import AuditEvent
from assessments.audit.signing import signing_key_ensure
from assessments.audit.verify import audit_verify
from assessments.evidence.hostcap import _key as hostcap_key
from assessments.evidence.models import Check, CheckRun, RunStatus, Verdict
from assessments.evidence.services import check_create, linked_system_create
from assessments.evidence.tasks import check_runs_dispatch
from assessments.pilots.models import Pilot, Response
from assessments.pilots.services import pilot_create
from readiness.celery import app as celery_app

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["--without-mingle", "--without-gossip", "--without-heartbeat"]
HOST = "127.0.0.1"
CAP = 4  # the default OUTBOUND_MAX_PER_HOST, set explicitly so the environment cannot change it
THRESHOLD = 0.5


def _wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")


def _database_url() -> str:
    """The test database as a URL, so the worker reads and writes the rows the test sees."""
    db = connection.settings_dict
    login = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgresql://{login}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class MetricServer(ThreadingHTTPServer):
    """Answers ``GET /score/<n>`` with ``{"score": n / 100}`` after ``delay`` seconds.

    While ``gate`` is clear every request waits for it, so a run can be caught mid-fetch.
    Counts requests per path and the most that were in flight at once.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, *, delay: float = 0.0) -> None:
        super().__init__((HOST, 0), _MetricHandler)
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.requests: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, n: int) -> str:
        return f"http://{HOST}:{self.server_address[1]}/score/{n}"

    def close(self) -> None:
        self.gate.set()
        self.shutdown()
        self.server_close()


class _MetricHandler(BaseHTTPRequestHandler):
    server: MetricServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.requests[self.path] += 1
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        try:
            server.gate.wait(timeout=90)
            time.sleep(server.delay)
            body = json.dumps({"score": int(self.path.rsplit("/", 1)[1]) / 100}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker that asked was killed: nobody is left to answer
        finally:
            with server.lock:
                server.in_flight -= 1

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Worker:
    """A `celery worker` subprocess (prefork, the production pool) in its own process group,
    consuming one private queue; its log goes to a file."""

    def __init__(self, *, queue: str, log: Path, env: dict[str, str], concurrency: int) -> None:
        self.log = log
        self._file = log.open("wb")
        command = [sys.executable, "-m", "celery", "-A", "tests.evidence.worker_app", "worker", "-Q", queue]
        command += ["--pool=prefork", f"--concurrency={concurrency}", "-l", "INFO", *QUIET]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: no warm shutdown, no acknowledgements."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        else:
            # Pool processes outlive a killed parent only briefly; make sure none is left.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self._file.close()


def _unacked(broker: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """Jobs a worker has taken from ``queue`` and not yet acknowledged."""
    found = []
    for raw in broker.hgetall("unacked").values():
        message, _exchange, routing_key = json.loads(raw)
        if routing_key == queue:
            found.append(message)
    return found


def _idle(broker: redis.Redis, queue: str) -> bool:
    return broker.llen(queue) == 0 and not _unacked(broker, queue)


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    if connection.vendor != "postgresql":
        pytest.skip("the workers need a database they can share (PostgreSQL)")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    slots_before = {str(token) for token in client.zrange(hostcap_key(HOST), 0, -1)}
    yield client
    # A killed worker's slot on the host would otherwise linger until its lease ends.
    taken = {str(token) for token in client.zrange(hostcap_key(HOST), 0, -1)} - slots_before
    if taken:
        client.zrem(hostcap_key(HOST), *taken)
    client.close()


@pytest.fixture
def queue(broker: redis.Redis) -> Iterator[str]:
    """A queue no other worker reads, which this process sends its jobs to as well; emptied afterwards."""
    name = f"test-evidence-{os.getpid()}-{time.time_ns()}"
    default = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = name
    yield name
    celery_app.conf.task_default_queue = default
    broker.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    for tag, raw in broker.hgetall("unacked").items():
        if json.loads(raw)[2] == name:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)


@pytest.fixture
def workers(tmp_path: Path, queue: str, redis_url: str) -> Iterator[Callable[..., Worker]]:
    signing_key_ensure()  # one key for every worker, made before any of them starts
    base = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "readiness.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": redis_url,
        "PREFLIGHT_TEST_QUEUE": queue,
        "PREFLIGHT_VAR_DIR": str(tmp_path / "var"),
        "AUDIT_SIGNING_KEY_PATH": str(settings.AUDIT_SIGNING_KEY_PATH),
        "AUDIT_CHECKPOINT_DIR": str(settings.AUDIT_CHECKPOINT_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "OUTBOUND_ALLOWED_HOSTS": HOST,
        "OUTBOUND_MAX_PER_HOST": str(CAP),
    }
    started: list[Worker] = []

    def start(name: str, *, concurrency: int, **env: str) -> Worker:
        worker = Worker(queue=queue, log=tmp_path / f"{name}.log", env={**base, **env}, concurrency=concurrency)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def server() -> Iterator[MetricServer]:
    metrics = MetricServer(delay=0.2)
    yield metrics
    metrics.close()


@pytest.fixture
def pilot(framework, users, owner_actor) -> Pilot:
    return pilot_create(
        organisation=framework.organisation, actor=owner_actor, name="Claims triage", technical_owner=users["owner"]
    )


def _checks(pilot: Pilot, actor, server: MetricServer, scores: list[int]) -> list[Check]:
    """One http_json system per score, each with a check passing at THRESHOLD."""
    criterion = Response.objects.get(assessment__pilot=pilot, criterion__code="EV-03").criterion
    checks = []
    for n, score in enumerate(scores):
        system = linked_system_create(
            pilot=pilot,
            actor=actor,
            kind="http_json",
            name=f"Scores {n}",
            configuration={"url": server.url(score), "json_path": "$.score"},
        )
        checks.append(
            check_create(
                system=system,
                criterion=criterion,
                actor=actor,
                name="Score",
                metric="value",
                comparator="gte",
                threshold=THRESHOLD,
            )
        )
    return checks


def _finished_events(runs: list[CheckRun]) -> Counter[str]:
    ids = [str(run.pk) for run in runs]
    return Counter(
        AuditEvent.objects.filter(object_type="check_run", object_id__in=ids).values_list("object_id", flat=True)
    )


def test_a_worker_runs_a_sweep_once_per_check_within_the_host_cap(pilot, owner_actor, server, broker, queue, workers):
    scores = [(n * 7) % 100 for n in range(20)]  # 0, 7, … 98, 5, 12, … 33: seven of twenty pass
    checks = _checks(pilot, owner_actor, server, scores)
    worker = workers("sweep", concurrency=8)

    check_runs_dispatch.apply_async()  # what beat sends; the worker's dispatcher queues each run

    _wait_for(lambda: CheckRun.objects.filter(status=RunStatus.OK).count() == len(checks), 60, "every check to finish")
    _wait_for(lambda: _idle(broker, queue), 15, "the queue to empty")
    runs = []
    for check, score in zip(checks, scores, strict=True):
        [run] = CheckRun.objects.filter(check_rule=check)
        expected = Verdict.PASS if score / 100 >= THRESHOLD else Verdict.FAIL
        assert (run.status, run.verdict, run.value, run.attempts) == (RunStatus.OK, expected, score / 100, 1)
        check.refresh_from_db()
        assert check.latest_run_id == run.pk and check.next_run_at > timezone.now()
        runs.append(run)
    assert {Verdict.PASS, Verdict.FAIL} <= {run.verdict for run in runs}
    assert _finished_events(runs) == Counter({str(run.pk): 1 for run in runs})
    assert set(AuditEvent.objects.filter(object_type="check_run").values_list("action", flat=True)) == {
        "check_run.finished"
    }
    # Each system was asked once, and the host never saw more than the cap at a time.
    assert server.requests == Counter(f"/score/{score}" for score in scores)
    assert 2 <= server.most_in_flight <= CAP, server.most_in_flight
    # Eight processes appended to one organisation's chain at once and left it whole.
    assert audit_verify(organisation=pilot.organisation, record_result=False).ok
    output = worker.output()
    assert "Traceback" not in output, output


def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_no_run(
    pilot, owner_actor, server, broker, queue, workers
):
    [check] = _checks(pilot, owner_actor, server, [97])
    # The shortest visibility timeout there is: a killed worker's job comes back after 10 s,
    # and a run's lease (the hard time limit, 6 s, plus 30 s) runs out 36 s after it started.
    fast = {"CELERY_VISIBILITY_TIMEOUT": "10"}
    server.gate.clear()
    first = workers("first", concurrency=1, **fast)
    check_runs_dispatch.apply_async()

    _wait_for(lambda: server.in_flight == 1, 30, "the first worker to be mid-fetch")
    run = CheckRun.objects.get(check_rule=check)
    assert (run.status, run.attempts) == (RunStatus.RUNNING, 1)
    first.kill()
    [lost_job] = [job for job in _unacked(broker, queue) if job["headers"]["task"].endswith(".check_run")]
    job_id = lost_job["headers"]["id"]
    server.gate.set()  # the killed worker's request ends; nobody reads the answer

    second = workers("second", concurrency=2, **fast)
    # Redelivered after the visibility timeout, the job finds the run leased and does nothing.
    done = f"check_run[{job_id}] succeeded"
    _wait_for(lambda: done in second.output(), 30, "the redelivered job")
    assert second.output().split(done, 1)[1].splitlines()[0].endswith(": 'skipped'")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (RunStatus.RUNNING, 1)
    assert server.requests == Counter({"/score/97": 1})

    # Beat's dispatcher (every 30 s in production; every 2 s here) takes the run over once the
    # lease has run out. A dispatch that finds it claimed or finished does nothing.
    def finished() -> bool:
        check_runs_dispatch.apply_async()
        time.sleep(1.8)
        return CheckRun.objects.filter(pk=run.pk, status=RunStatus.OK).exists()

    _wait_for(finished, 60, "the dispatcher to take the run over after its lease")
    _wait_for(lambda: _idle(broker, queue), 15, "the queue to empty")

    run.refresh_from_db()
    assert (run.status, run.verdict, run.attempts) == (RunStatus.OK, Verdict.PASS, 2)
    assert CheckRun.objects.filter(check_rule=check).count() == 1
    assert _finished_events([run]) == Counter({str(run.pk): 1})
    assert server.requests == Counter({"/score/97": 2})  # the killed fetch and the one that finished
    output = second.output()
    assert "Traceback" not in output, output
