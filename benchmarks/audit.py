"""Audit-trail figures: append throughput under 8 concurrent writers (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/preflight python benchmarks/audit.py

The append test uses a throwaway database (<name>_bench) that it creates and drops;
without PostgreSQL it says so. Verifying an export (time next to raw chained SHA-256,
peak memory) is measured by benchmarks/verify.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")


def append_figures(writers: int, per_writer: int) -> None:
    from urllib.parse import urlparse, urlunparse

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print("append throughput: needs PostgreSQL (set DATABASE_URL); skipped")
        return
    import psycopg

    parsed = urlparse(url)
    bench_db = (parsed.path.lstrip("/") or "preflight") + "_bench"
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
        conn.execute(f'CREATE DATABASE "{bench_db}"')
    os.environ["DATABASE_URL"] = urlunparse(parsed._replace(path="/" + bench_db))
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections, transaction

        from assessments.audit.context import Actor
        from assessments.audit.models import AuditEvent
        from assessments.audit.services import audit_record
        from assessments.audit.verify import audit_verify
        from assessments.organisations.services import organisation_create

        call_command("migrate", verbosity=0)
        org = organisation_create(name="Bench", slug="bench", actor=Actor.system("bench"))
        barrier = threading.Barrier(writers)

        def writer(index: int) -> None:
            actor = Actor.system(f"writer-{index}")
            barrier.wait()
            for n in range(per_writer):
                with transaction.atomic():
                    audit_record(
                        organisation=org,
                        actor=actor,
                        action="bench.append",
                        object_type="bench",
                        object_id=f"{index}-{n}",
                        changes={"n": [None, n]},
                    )
            connections.close_all()

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        total = writers * per_writer
        sequences = list(AuditEvent.objects.filter(organisation=org).values_list("sequence", flat=True))
        parents = AuditEvent.objects.filter(organisation=org).values("prev_hash").distinct().count()
        forks = len(sequences) - parents
        rate = total / elapsed
        print(f"append: {total:,} events, {writers} writers, {elapsed:.2f} s = {rate:,.0f} events/s (goal >= 500)")
        print(f"forks: {forks}; gapless: {sorted(sequences) == list(range(1, len(sequences) + 1))}")
        t0 = time.perf_counter()
        result = audit_verify(organisation=org, record_result=False)
        print(
            f"database verify of {result.events_checked + 0:,} events: {time.perf_counter() - t0:.2f} s, ok={result.ok}"
        )
        connections.close_all()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=500)
    args = parser.parse_args()
    append_figures(args.writers, args.per_writer)


if __name__ == "__main__":
    main()
