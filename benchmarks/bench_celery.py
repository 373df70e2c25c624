"""The Celery app the sweep benchmark's workers load (``-A benchmarks.bench_celery``).

The real app, except that every job a worker sends (the dispatcher's check runs, their
retries, checkpoint signing) goes to the benchmark's private queue, named in
PREFLIGHT_BENCH_QUEUE, so no other worker on the same Redis takes part.
"""

from __future__ import annotations

import os

from readiness.celery import app

app.conf.task_default_queue = os.environ["PREFLIGHT_BENCH_QUEUE"]

__all__ = ["app"]
