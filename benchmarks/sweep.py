"""Sweep speed: 2,000 linked systems (http_json) against a local endpoint that answers after
100 ms, checked by 1, 2 and 4 real Celery worker processes over Redis, next to the ideal
(systems x latency / total concurrency); then one sweep at the default per-host cap.

    REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgres://postgres@127.0.0.1:5432/preflight \\
        python benchmarks/sweep.py [--systems 2000] [--workers 1,2,4] [--concurrency 8] [--pool prefork]

Each worker is ``celery worker --pool=prefork --concurrency=8``: prefork is Celery's default and
what docker/compose.yml runs, and the only pool that enforces the jobs' hard time limits, which
the run lease relies on (a run still marked running after the lease is taken over). The
concurrency is fixed so that 1, 2 and 4 workers compare; ``--pool threads`` shows the other
choice (a seventh of the memory, one CPU per worker). The dispatcher runs inside the workers,
as beat has it do. Every system is on one host, so the scaling sweeps lift OUTBOUND_MAX_PER_HOST;
the last sweep keeps the default cap of 4, and its ideal is systems x latency / 4.

The wall time runs from sending the dispatch job to the last run's finish. CPU per run, the
machine's CPU use and peak RSS (the sum of each worker process's peak) are read from /proc
(Linux; zeros elsewhere); lock waits are sampled from pg_stat_activity every 100 ms.

Needs Redis (the broker and the per-host cap) and PostgreSQL (several processes write at once):
without either it says so and stops. It creates and drops a throwaway <name>_sweep database, and
uses a private queue in Redis that it empties afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
DEFAULT_CAP = 4  # OUTBOUND_MAX_PER_HOST's default
UNCAPPED = 100_000
THRESHOLD = 0.5


class Endpoint(ThreadingHTTPServer):
    """``GET /score/<n>`` answers ``{"score": n / 100}`` after ``latency`` seconds, one thread per
    request; counts requests and the most in flight at once."""

    daemon_threads = True
    request_queue_size = 1024  # a burst of connects must not wait on a full listen backlog

    def __init__(self, latency: float) -> None:
        super().__init__((HOST, 0), _EndpointHandler)
        self.latency = latency
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.most_in_flight = 0
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, n: int) -> str:
        return f"http://{HOST}:{self.server_address[1]}/score/{n}"

    def reset(self) -> None:
        with self.lock:
            self.requests = self.most_in_flight = 0


class _EndpointHandler(BaseHTTPRequestHandler):
    server: Endpoint

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.requests += 1
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        try:
            time.sleep(server.latency)
            body = b'{"score": %.2f}' % (int(self.path.rsplit("/", 1)[1]) / 100)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def log_message(self, format: str, *args: Any) -> None:
        pass


def reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or HOST, parsed.port or 6379), timeout=3):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def throwaway_database(url: str) -> Iterator[str]:
    import psycopg

    parsed = urlparse(url)
    name = (parsed.path.lstrip("/") or "preflight") + "_sweep"
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(parsed._replace(path="/" + name))
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(*, systems: int, per_pilot: int, endpoint: Endpoint) -> None:
    """One organisation; pilots of ``per_pilot`` systems each, one check per system (half pass).

    One system and check go through the services; the rest are bulk copies (their creation
    is not what is measured, so it is not audited)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from assessments.audit.context import Actor
    from assessments.evidence.models import Check, LinkedSystem
    from assessments.evidence.services import check_create, linked_system_create
    from assessments.frameworks.loader import DEFAULT_FRAMEWORK_PATH, framework_read_file
    from assessments.frameworks.services import framework_load
    from assessments.organisations.services import membership_grant, organisation_create, user_create
    from assessments.pilots.models import Assessment, Pilot, Response
    from assessments.pilots.scorecache import scores_refresh
    from assessments.pilots.services import pilot_create

    call_command("migrate", verbosity=0)
    system_actor = Actor.system("bench")
    org = organisation_create(name="Bench", slug="bench", actor=system_actor)
    framework = framework_load(organisation=org, spec=framework_read_file(DEFAULT_FRAMEWORK_PATH), actor=system_actor)
    owner = user_create(organisation=org, username="owner", email="o@b.test", password="pw", actor=system_actor)
    membership_grant(organisation=org, user=owner, role="owner", actor=system_actor)
    actor = Actor.for_user(owner)
    first = pilot_create(organisation=org, actor=actor, name="Pilot 00000", technical_owner=owner)
    criteria = list(framework.criteria.all())
    criterion = next(c for c in criteria if c.code == "EV-03")
    template = linked_system_create(
        pilot=first,
        actor=actor,
        kind="http_json",
        name="Scores 0",
        configuration={"url": endpoint.url(0), "json_path": "$.score"},
    )
    check_create(
        system=template, criterion=criterion, actor=actor, name="Score", metric="value", comparator="gte",
        threshold=THRESHOLD,
    )  # fmt: skip
    pilots = [first]
    count = -(-systems // per_pilot)
    if count > 1:
        made = Pilot.objects.bulk_create(
            Pilot(organisation=org, name=f"Pilot {n:05d}", slug=f"pilot-{n:05d}", technical_owner=owner)
            for n in range(1, count)
        )
        assessments = Assessment.objects.bulk_create(Assessment(pilot=p, framework=framework) for p in made)
        Response.objects.bulk_create(Response(assessment=a, criterion=c) for a in assessments for c in criteria)
        scores_refresh(assessment_ids=[a.pk for a in assessments], today=timezone.localdate())
        pilots += made
    linked = LinkedSystem.objects.bulk_create(
        LinkedSystem(
            pilot=pilots[n // per_pilot], kind="http_json", name=f"Scores {n}", created_by=owner,
            configuration={"url": endpoint.url(n % 100), "json_path": "$.score"},
        )
        for n in range(1, systems)
    )  # fmt: skip
    Check.objects.bulk_create(
        Check(
            linked_system=system, criterion=criterion, name="Score", metric="value", comparator="gte",
            threshold=THRESHOLD, rule_changed_by=owner,
        )
        for system in linked
    )  # fmt: skip
    assert Check.objects.count() == systems


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def peak_rss(self) -> int:
        """Bytes: the sum of each process's peak resident set (VmHWM) in the worker's process group."""
        total = 0
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                if os.getpgid(int(status.parent.name)) != self.process.pid:
                    continue
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
            except (OSError, ValueError):
                continue
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def start_workers(
    count: int, *, queue: str, pool: str, concurrency: int, cap: int, tmp: Path, label: str
) -> list[Worker]:
    env = {**os.environ, "PREFLIGHT_BENCH_QUEUE": queue, "OUTBOUND_MAX_PER_HOST": str(cap)}
    workers = []
    for index in range(count):
        log = tmp / f"{label}-worker{index}.log"
        command = [sys.executable, "-m", "celery", "-A", "benchmarks.bench_celery", "worker", "-Q", queue]
        command += [f"--pool={pool}", f"--concurrency={concurrency}", "-n", f"sweep{index}-{os.getpid()}@%h"]
        command += ["-l", "INFO", "--without-mingle", "--without-gossip", "--without-heartbeat"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        workers.append(Worker(process, log))
    deadline = time.monotonic() + 60
    for worker in workers:
        while " ready." not in worker.output():
            if worker.process.poll() is not None or time.monotonic() > deadline:
                for other in workers:
                    other.stop()
                raise SystemExit(f"a worker did not start:\n{worker.output()[-3000:]}")
            time.sleep(0.1)
    return workers


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
TABLE = re.compile(r'(?:FROM|UPDATE|INTO)\s+"(\w+)"')


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc; 0 elsewhere)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            if os.getpgid(int(entry.name)) == pgid:
                pids.append(int(entry.name))
    return pids


def machine_busy() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot (Linux; zeros elsewhere)."""
    with contextlib.suppress(OSError):
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(ticks) - ticks[3] - ticks[4], sum(ticks)
    return 0, 0


class Sampler(threading.Thread):
    """Every 100 ms while a sweep runs: the benchmark database's busy sessions, which of them
    wait on a lock (by the table their statement names), and the CPU its backends have used."""

    def __init__(self, database_url: str, *, ignore: int) -> None:
        super().__init__(daemon=True)
        self.url = database_url
        self.ignore = ignore  # the benchmark's own session, counting finished runs
        self.done = threading.Event()
        self.samples = self.busy = self.waiting = 0
        self.waited_on: Counter[str] = Counter()
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.done.wait(0.1):
                rows = conn.execute(
                    "SELECT pid, state, wait_event_type, query FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
                    [self.ignore],
                ).fetchall()
                for pid, state, wait, query in rows:
                    used = cpu_seconds([pid])
                    # A backend already there at the first look has its CPU counted from then on.
                    self.cpu_first.setdefault(pid, used if self.samples == 0 else 0.0)
                    self.cpu_last[pid] = used
                    if state == "idle":
                        continue
                    self.busy += 1
                    if wait == "Lock":
                        self.waiting += 1
                        found = TABLE.search(query or "")
                        self.waited_on[found.group(1) if found else "?"] += 1
                self.samples += 1

    def database_cpu(self) -> float:
        return sum(self.cpu_last.values()) - sum(self.cpu_first.values())

    def stop(self) -> None:
        self.done.set()
        self.join()


@dataclass
class Sweep:
    wall: float
    first_start: float
    rss: list[int]
    most_in_flight: int
    worker_cpu: float
    database_cpu: float
    machine_busy: float
    busy_sessions: float
    waiting_sessions: float
    waited_on: Counter[str]


def sweep(
    *, workers: int, pool: str, concurrency: int, cap: int, queue: str, endpoint: Endpoint, tmp: Path, systems: int
) -> Sweep:
    from django.db import connection
    from django.db.models import Max, Min
    from django.utils import timezone

    from assessments.audit.models import AuditEvent
    from assessments.evidence.models import FINISHED, Check, CheckRun, RunStatus
    from assessments.evidence.tasks import check_runs_dispatch

    # Every check due again, no runs: each sweep starts from the same state.
    Check.objects.update(latest_run=None, failing_since=None, next_run_at=timezone.now())
    CheckRun.objects.all().delete()
    endpoint.reset()
    started = start_workers(
        workers, queue=queue, pool=pool, concurrency=concurrency, cap=cap, tmp=tmp, label=f"{workers}x{cap}"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        sampler = Sampler(os.environ["DATABASE_URL"], ignore=cursor.fetchone()[0])
    try:
        pids = [pid for worker in started for pid in group_pids(worker.process.pid)]
        cpu_before = cpu_seconds(pids)
        busy_before = machine_busy()
        sampler.start()
        t0 = timezone.now()
        check_runs_dispatch.apply_async(queue=queue)
        deadline = time.monotonic() + max(300.0, 30 * systems * endpoint.latency / min(cap, concurrency * workers))
        while CheckRun.objects.filter(status__in=FINISHED).count() < systems:
            if time.monotonic() > deadline:
                raise SystemExit(f"the sweep did not finish: {CheckRun.objects.filter(status__in=FINISHED).count()}")
            time.sleep(0.1)
        sampler.stop()
        busy_after = machine_busy()
        worker_cpu = cpu_seconds(pids) - cpu_before
        database_cpu = sampler.database_cpu()
        times = CheckRun.objects.aggregate(first=Min("started_at"), last=Max("finished_at"))
        rss = [worker.peak_rss() for worker in started]
    finally:
        sampler.done.set()
        for worker in started:
            worker.stop()
    logs = "".join(worker.output() for worker in started)
    if "Traceback" in logs:
        raise SystemExit(f"a worker failed:\n{logs[logs.index('Traceback') - 2000 :][:6000]}")
    ok = CheckRun.objects.filter(status=RunStatus.OK).count()
    if ok != systems or CheckRun.objects.count() != systems:
        raise SystemExit(f"{ok} of {systems} runs finished ok, {CheckRun.objects.count()} runs in all")
    run_ids = [str(pk) for pk in CheckRun.objects.values_list("pk", flat=True)]
    events = AuditEvent.objects.filter(object_type="check_run", object_id__in=run_ids).count()
    if events != systems or endpoint.requests != systems:
        raise SystemExit(f"{events} audit events and {endpoint.requests} requests for {systems} runs")
    samples = max(1, sampler.samples)
    ticks = (busy_after[1] - busy_before[1]) or 1
    return Sweep(
        wall=(times["last"] - t0).total_seconds(),
        first_start=(times["first"] - t0).total_seconds(),
        rss=rss,
        most_in_flight=endpoint.most_in_flight,
        worker_cpu=worker_cpu,
        database_cpu=database_cpu,
        machine_busy=(busy_after[0] - busy_before[0]) / ticks,
        busy_sessions=sampler.busy / samples,
        waiting_sessions=sampler.waiting / samples,
        waited_on=sampler.waited_on,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--systems", type=int, default=2000)
    parser.add_argument("--per-pilot", type=int, default=5, help="linked systems per pilot")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the endpoint takes to answer")
    parser.add_argument("--workers", default="1,2,4", help="worker processes for each sweep, comma-separated")
    parser.add_argument("--concurrency", type=int, default=8, help="each worker's --concurrency")
    parser.add_argument("--pool", choices=["prefork", "threads"], default="prefork")
    parser.add_argument("--no-cap-run", action="store_true", help="skip the sweep at the default per-host cap")
    args = parser.parse_args()

    redis_url = os.environ.get("REDIS_URL", "")
    database_url = os.environ.get("DATABASE_URL", "")
    if not redis_url or not reachable(redis_url):
        print("sweep: needs a reachable Redis (set REDIS_URL); skipped")
        return
    if not database_url.startswith(("postgres://", "postgresql://")):
        print("sweep: needs PostgreSQL, which several worker processes can write at once (set DATABASE_URL); skipped")
        return

    queue = f"bench-sweep-{os.getpid()}-{time.time_ns()}"
    with tempfile.TemporaryDirectory() as tmp_name, throwaway_database(database_url) as bench_url:
        tmp = Path(tmp_name)
        os.environ.update(
            DATABASE_URL=bench_url,
            DJANGO_SETTINGS_MODULE="readiness.settings",
            PREFLIGHT_VAR_DIR=str(tmp / "var"),
            PREFLIGHT_BENCH_QUEUE=queue,
            AUDIT_SIGNING_KEY_PATH=str(tmp / "audit-signing-key.pem"),
            AUDIT_CHECKPOINT_DIR=str(tmp / "checkpoints"),
            MEDIA_ROOT=str(tmp / "media"),
            OUTBOUND_ALLOWED_HOSTS=HOST,
            LOG_LEVEL="WARNING",
            SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        )
        endpoint = Endpoint(args.latency)
        try:
            t0 = time.perf_counter()
            seed(systems=args.systems, per_pilot=args.per_pilot, endpoint=endpoint)
            from assessments.audit.signing import signing_key_ensure

            signing_key_ensure()  # before any worker starts, so they all sign with one key
            pilots = -(-args.systems // args.per_pilot)
            print(
                f"seeded {args.systems:,} http_json systems with one check each ({pilots:,} pilots, one organisation)"
                f" in {time.perf_counter() - t0:.1f} s; the endpoint answers after {args.latency * 1000:.0f} ms"
            )
            cores = os.cpu_count() or 1
            print(
                f"each worker: --pool={args.pool} --concurrency={args.concurrency}; this machine: {cores} CPUs, "
                f"load average {os.getloadavg()[0]:.1f} before the first sweep"
            )
            print(
                f"{'workers':>7} {'cap':>5} {'wall':>7} {'ideal':>7} {'ratio':>6} {'runs/s':>6} {'1st run':>7} "
                f"{'in flight':>9} {'CPU/run':>15} {'CPU floor':>9} {'busy':>5} {'lock waits':>10}  {'on':<22} peak RSS"
            )
            plan = [(int(n), UNCAPPED) for n in args.workers.split(",")]
            if not args.no_cap_run:
                plan.append((1, DEFAULT_CAP))
            for workers, cap in plan:
                result = sweep(
                    workers=workers, pool=args.pool, concurrency=args.concurrency, cap=cap, queue=queue,
                    endpoint=endpoint, tmp=tmp, systems=args.systems,
                )  # fmt: skip
                ideal = args.systems * args.latency / min(cap, workers * args.concurrency)
                worker_ms, database_ms = (1000 * t / args.systems for t in (result.worker_cpu, result.database_cpu))
                per_run = (worker_ms + database_ms) / 1000
                cpu = f"{worker_ms:.0f}+{database_ms:.0f} ms"
                waited = result.waited_on.most_common(1)[0][0] if result.waited_on else "-"
                rss = "+".join(f"{r / 2**20:.0f}" for r in result.rss)
                print(
                    f"{workers:>7} {'none' if cap == UNCAPPED else cap:>5} {result.wall:6.1f}s {ideal:6.1f}s "
                    f"{result.wall / ideal:5.2f}x {args.systems / result.wall:6.0f} {result.first_start:6.1f}s "
                    f"{result.most_in_flight:>9} {cpu:>15} {args.systems * per_run / cores:8.1f}s "
                    f"{result.machine_busy:5.0%} {result.waiting_sessions:4.1f} of {result.busy_sessions:<4.1f}  "
                    f"{waited:<22} {rss} MiB"
                )
            print(
                "goal: ratio <= 1.4x. ideal: systems x latency / (workers x concurrency), or / cap when capped. "
                "1st run: from dispatch to the first run's start. in flight: most requests the endpoint held at "
                "once. CPU/run: worker processes + PostgreSQL backends. CPU floor: the wall time if every CPU here "
                "did nothing but this. busy: the whole machine's CPU use. lock waits: database sessions waiting on a "
                "lock, of those busy (mean of 100 ms samples), and the table most waited on."
            )
        finally:
            endpoint.shutdown()
            endpoint.server_close()
            import redis

            client = redis.Redis.from_url(redis_url)
            client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
            client.close()


if __name__ == "__main__":
    main()
