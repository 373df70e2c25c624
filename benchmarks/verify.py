"""Verifying an audit export against raw chained SHA-256 over the same canonical bytes.

    python benchmarks/verify.py [--events 1000000]

Writes a valid chain of N realistic events twice, as export format 1 (fields
re-encoded by the verifier) and format 2 (each event's canonical bytes as a
line, hashed as stored), and times the standalone verifier on each from a warm page cache. The
floor is SHA-256 over each event's canonical bytes held in memory, chained (each
event's bytes hold the previous hash), with nothing read, parsed or compared.
Needs no database. Goal (issue 11): format 2 at most 2x the floor.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assessments.audit import chain


def _record(n: int, prev: str) -> dict[str, object]:
    return {
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


def write_exports(v1: Path, v2: Path, events: int) -> list[bytes]:
    """Both export formats of one chain; returns the canonical bytes of every event."""
    prev = chain.GENESIS_HASH
    blobs = []
    with v1.open("w", encoding="utf-8") as old, v2.open("wb") as new:
        new.write(b" " * 200 + b"\n")  # room for the header, written once the head is known
        for n in range(1, events + 1):
            record = _record(n, prev)
            blob = chain.export_line(record)
            blobs.append(blob)
            prev = hashlib.sha256(blob).hexdigest()
            new.write(blob + b"\n")
            record["hash"] = prev
            old.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
    header = chain.export_header(organisation="bench", head_sequence=events, head_hash=prev)
    with v2.open("r+b") as new:
        new.write(header.ljust(200) + b"\n")
    return blobs


def raw_chained_sha256(blobs: list[bytes]) -> float:
    """The floor: hash each event's canonical bytes in order, as a chain does, and nothing else."""
    sha256 = hashlib.sha256
    start = time.perf_counter()
    for blob in blobs:
        sha256(blob).hexdigest()
    return time.perf_counter() - start


def read_and_split(path: Path) -> float:
    """What no verifier of this file avoids: reading it and cutting it into lines, with the verifier's own reader."""
    start = time.perf_counter()
    with path.open("rb") as handle:
        handle.readline()
        for _ in chain._export_chunks(handle):
            pass
    return time.perf_counter() - start


def timed_verify(path: Path, events: int) -> float:
    path.read_bytes()  # warm the page cache, so both formats are timed from memory
    gc.collect()
    start = time.perf_counter()
    header, records = chain.read_export(path, organisation="bench", evidence_files=False)  # as without --files-dir
    result = chain.verify_records(records, organisation="bench")
    problem = chain.header_problem(header, result, organisation="bench")
    elapsed = time.perf_counter() - start
    assert result.ok and problem is None and result.events_checked == events, (result.problem, problem)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="the floor and format 2: best of this many runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        v1, v2 = Path(tmp) / "events-v1.jsonl", Path(tmp) / "events-v2.jsonl"
        t0 = time.perf_counter()
        blobs = write_exports(v1, v2, args.events)
        print(
            f"generated {args.events:,} events in {time.perf_counter() - t0:.1f} s: format 1 "
            f"{v1.stat().st_size / 1e6:.0f} MB, format 2 {v2.stat().st_size / 1e6:.0f} MB, "
            f"canonical bytes {sum(map(len, blobs)) / 1e6:.0f} MB"
        )
        # Interleaved, best of N each: a busy neighbour then slows the floor and the verifier alike.
        raws, news, reads = [], [], []
        for _ in range(args.runs):
            raws.append(raw_chained_sha256(blobs))
            news.append(timed_verify(v2, args.events))
            reads.append(read_and_split(v2))
        raw, new, read = min(raws), min(news), min(reads)
        del blobs
        gc.collect()
        old = timed_verify(v1, args.events)
        print(f"raw chained SHA-256 over the canonical bytes:  {raw:6.2f} s")
        print(f"reading format 2 and cutting it into lines:    {read:6.2f} s  {read / raw:5.1f}x  (part of the next)")
        print(f"verify format 1 (parse + re-encode + hash):    {old:6.2f} s  {old / raw:5.1f}x  (one run)")
        print(f"verify format 2 (read + hash as stored):       {new:6.2f} s  {new / raw:5.1f}x  (goal <= 2x)")
        print(f"  all runs: floor {' '.join(f'{t:.2f}' for t in raws)}; format 2 {' '.join(f'{t:.2f}' for t in news)}")
        tracemalloc.start()
        chain.verify_records(chain.read_export(v2, organisation="bench")[1], organisation="bench")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"verifier peak Python memory over {args.events:,} events (format 2): {peak / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
