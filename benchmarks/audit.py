"""Audit-trail figures: append throughput under 8 concurrent writers (PostgreSQL),
verification time for N events next to raw SHA-256 over the same canonical bytes,
and the verifier's peak memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/preflight python benchmarks/audit.py [--events N]

On PostgreSQL the append test uses a throwaway database (<name>_bench) that it
creates and drops. Without PostgreSQL it says so and still measures verification.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")

from assessments.audit import chain


def write_export(path: Path, events: int) -> None:
    """A valid chain of ``events`` realistic events as JSON Lines (what audit_export writes)."""
    prev = chain.GENESIS_HASH
    with path.open("w", encoding="utf-8") as out:
        for n in range(1, events + 1):
            record = {
                "organisation": "bench",
                "sequence": n,
                "occurred_at": f"2026-11-22T10:{(n // 60) % 60:02d}:{n % 60:02d}.{n % 1000000:06d}Z",
                "actor_type": "user",
                "actor_id": str(n % 40),
                "actor_label": f"user{n % 40}",
                "action": "response.updated",
                "object_type": "response",
                "object_id": str(n),
                "pilot_id": n % 2000,
                "changes": {"criterion": ["EV-03", "EV-03"], "status": ["not_started", "met"]},
                "request_id": f"{n:032x}",
                "prev_hash": prev,
            }
            prev = record["hash"] = chain.event_hash(record)
            out.write(json.dumps(record, sort_keys=True, ensure_ascii=False))
            out.write("\n")


def raw_sha256_seconds(path: Path) -> float:
    """Hash the canonical bytes of every event and nothing else (the floor)."""
    blobs = []
    for record in chain.read_jsonl(path):
        blobs.append(chain.canonical_bytes(record))
    start = time.perf_counter()
    for blob in blobs:
        hashlib.sha256(blob).hexdigest()
    elapsed = time.perf_counter() - start
    del blobs
    return elapsed


def verify_figures(events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        t0 = time.perf_counter()
        write_export(path, events)
        print(f"generated {events:,} events ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")

        start = time.perf_counter()
        result = chain.verify_records(chain.read_jsonl(path))
        verify_s = time.perf_counter() - start
        assert result.ok and result.events_checked == events, result.problem

        hash_s = raw_sha256_seconds(path)
        print(
            f"verify (read + parse + canonicalise + hash + link): {verify_s:.2f} s  ({events / verify_s:,.0f} events/s)"
        )
        print(f"raw SHA-256 over the same canonical bytes:          {hash_s:.2f} s")
        print(f"ratio verify / raw hash: {verify_s / hash_s:.1f}x (goal <= 2x)")

        sample = min(events, 200_000)
        small = Path(tmp) / "small.jsonl"
        with path.open(encoding="utf-8") as src, small.open("w", encoding="utf-8") as dst:
            for _, line in zip(range(sample), src, strict=False):
                dst.write(line)
        for label, target in ((f"first {sample:,}", small), (f"all {events:,}", path)):
            tracemalloc.start()
            chain.verify_records(chain.read_jsonl(target))
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"verifier peak Python memory over {label} events: {peak / 1024:.0f} KiB")


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
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=500)
    args = parser.parse_args()
    append_figures(args.writers, args.per_writer)
    verify_figures(args.events)


if __name__ == "__main__":
    main()
