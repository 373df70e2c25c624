"""Page speed: the portfolio dashboard (2,000 pilots) and a pilot page (50 criteria,
300 evidence items) under 16 concurrent clients on 127.0.0.1, next to a bare Django
view rendering the same number of rows from a Python list (the floor).

    python benchmarks/pages.py [--pilots 2000] [--requests 320] [--clients 16]

Uses a throwaway SQLite file, or with DATABASE_URL=postgres://… a throwaway
<name>_pages database that it creates and drops. Serves with gunicorn, 5 sync workers (2 x cores + 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    """A port nobody listens on now (the OS picks it), so a stranger on a fixed port cannot answer for us."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PORT = free_port()


def setup_database(tmp: Path) -> tuple[str, str | None]:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        parsed = urlparse(url)
        name = (parsed.path.lstrip("/") or "preflight") + "_pages"
        admin = urlunparse(parsed._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return urlunparse(parsed._replace(path="/" + name)), admin
    return f"sqlite:///{tmp / 'pages.sqlite3'}", None


def seed(pilots: int) -> tuple[int, str]:
    """One pilot through the services, then clones in bulk; returns (pilot id, session key)."""
    import django

    django.setup()
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.utils import timezone

    from assessments.audit.context import Actor
    from assessments.frameworks.loader import DEFAULT_FRAMEWORK_PATH, framework_read_file
    from assessments.frameworks.services import framework_load
    from assessments.organisations.services import membership_grant, organisation_create, user_create
    from assessments.pilots.models import Assessment, AssessmentScore, Evidence, Pilot, Response
    from assessments.pilots.scorecache import scores_refresh
    from assessments.pilots.services import pilot_create

    call_command("migrate", verbosity=0)
    system = Actor.system("bench")
    org = organisation_create(name="Bench", slug="bench", actor=system)
    framework = framework_load(organisation=org, spec=framework_read_file(DEFAULT_FRAMEWORK_PATH), actor=system)
    owner = user_create(organisation=org, username="owner", email="o@b.test", password="pw", actor=system)
    membership_grant(organisation=org, user=owner, role="owner", actor=system)
    actor = Actor.for_user(owner)
    main = pilot_create(organisation=org, actor=actor, name="Benchmark pilot", technical_owner=owner)
    assessment = Assessment.objects.get(pilot=main)
    responses = list(Response.objects.filter(assessment=assessment))
    today = timezone.localdate()
    Response.objects.filter(assessment=assessment).update(status="met")
    Evidence.objects.bulk_create(
        Evidence(
            response=responses[i % len(responses)], kind="link", title=f"Evidence {i}", url=f"https://e.test/{i}",
            effective_date=today - dt.timedelta(days=i % 60), added_by=owner,
        )
        for i in range(300)
    )  # fmt: skip
    criteria = list(framework.criteria.all())
    batch = 200
    for start in range(1, pilots, batch):
        made = Pilot.objects.bulk_create(
            Pilot(
                organisation=org,
                name=f"Pilot {n:05d}",
                slug=f"pilot-{n:05d}",
                technical_owner=owner,
                stage=("pilot", "candidate", "production")[n % 3],
            )
            for n in range(start, min(pilots, start + batch))
        )  # fmt: skip
        assessments = Assessment.objects.bulk_create(Assessment(pilot=p, framework=framework) for p in made)
        Response.objects.bulk_create(
            Response(
                assessment=a, criterion=c, status=["met", "not_met", "partly_met", "not_started"][(a.pk + c.pk) % 4]
            )
            for a in assessments
            for c in criteria
        )
        scores_refresh(assessment_ids=[a.pk for a in assessments], today=today)
    scores_refresh(assessment_ids=[assessment.pk], today=today)
    assert Pilot.objects.count() == pilots and AssessmentScore.objects.count() == pilots
    session = SessionStore()
    session["_auth_user_id"] = str(owner.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = owner.get_session_auth_hash()
    session.create()
    return main.pk, session.session_key or ""


def wait_until_serving(server: subprocess.Popen[bytes]) -> None:
    """Wait for *our* gunicorn: it must still be running and answer the sign-in page with 200."""
    for _ in range(150):
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode} before serving on 127.0.0.1:{PORT}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1)
            conn.request("GET", "/accounts/login/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"nothing answered on 127.0.0.1:{PORT} within 30 s")


def hammer(path: str, cookie: str, requests: int, clients: int) -> list[float]:
    timings: list[float] = []
    lock = threading.Lock()
    per_client = requests // clients

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        for _ in range(per_client):
            start = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}"})
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}")
            with lock:
                timings.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings


def summary(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def query_counts(path: str, session_key: str) -> tuple[int, int, float]:
    """Queries for the first request (nothing stored yet) and the next, and the first's time in ms."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.cookies["sessionid"] = session_key
    assert client.get(path, HTTP_HOST="127.0.0.1").status_code == 200  # templates compiled, URLs loaded
    cache.clear()
    counts: list[int] = []
    cold_ms = 0.0
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            assert client.get(path, HTTP_HOST="127.0.0.1").status_code == 200
            cold_ms = cold_ms or (time.perf_counter() - start) * 1000
        counts.append(len(captured.captured_queries))
    return counts[0], counts[1], cold_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pilots", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db_url, admin = setup_database(tmp)
        os.environ.update(
            DATABASE_URL=db_url,
            DJANGO_SETTINGS_MODULE="benchmarks.bench_settings",
            PREFLIGHT_VAR_DIR=str(tmp / "var"),
            ALLOWED_HOSTS="127.0.0.1",
            SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        )
        os.environ.pop("REDIS_URL", None)
        t0 = time.perf_counter()
        pilot_id, session_key = seed(args.pilots)
        print(f"seeded {args.pilots:,} pilots (one with 300 evidence items) in {time.perf_counter() - t0:.1f} s")
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "benchmarks.bench_wsgi:application", "--bind", f"127.0.0.1:{PORT}",
             "--workers", "5", "--log-level", "warning"],
            cwd=ROOT, env=os.environ.copy(),
        )  # fmt: skip
        try:
            wait_until_serving(server)
            pages = [
                ("dashboard (25 of 2,000 pilots)", "/", "/bench/floor/25/"),
                ("dashboard, sorted and filtered", "/?sort=-score&gap=guardrails&below=60", "/bench/floor/25/"),
                ("pilot page (47 criteria, 300 evidence)", f"/pilots/{pilot_id}/", "/bench/floor/50/"),
            ]
            print(f"{args.clients} concurrent clients, {args.requests} requests per page, gunicorn, 5 sync workers")
            print(
                f"{'page':40} {'1 client':>9} {'floor':>8} {'ratio':>6} {'median':>8} {'p95':>8} {'floor med':>10} "
                f"{'ratio':>6} {'req/s':>6} {'queries':>8} {'first render':>12}"
            )
            for label, path, floor in pages:
                hammer(path, session_key, args.clients * 2, args.clients)  # warm up
                # One client, page and floor interleaved so a noisy neighbour slows both alike.
                page_times: list[float] = []
                floor_times: list[float] = []
                for _ in range(40):
                    page_times += hammer(path, session_key, 1, 1)
                    floor_times += hammer(floor, session_key, 1, 1)
                single, _ = summary(page_times)
                fsingle, _ = summary(floor_times)
                started = time.perf_counter()
                med, p95 = summary(hammer(path, session_key, args.requests, args.clients))
                throughput = args.requests / (time.perf_counter() - started)
                fmed, _ = summary(hammer(floor, session_key, args.requests, args.clients))
                cold, warm, cold_ms = query_counts(path, session_key)
                print(
                    f"{label:40} {single:7.1f}ms {fsingle:6.1f}ms {single / fsingle:5.1f}x {med:7.1f}ms {p95:7.1f}ms "
                    f"{fmed:9.1f}ms {med / fmed:5.1f}x {throughput:6.1f} {warm:>3d} ({cold:>2d}) {cold_ms:10.1f}ms"
                )
            print("goal: both ratios <= 3x")
            print(
                "queries: a page whose parts are stored (in brackets: the first request after a change, which"
                " renders them); first render: that request's time, in-process"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
            if admin:
                from django.db import connections

                connections.close_all()
                import psycopg

                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{urlparse(db_url).path.lstrip("/")}" WITH (FORCE)')


if __name__ == "__main__":
    main()
