"""The Celery app that worker subprocesses started by the evidence tests load (``-A``).

It is the real app with one change: every job a worker sends (the dispatcher's check runs,
their retries, checkpoint signing) goes to the test's private queue, named in
PREFLIGHT_TEST_QUEUE, instead of the default queue another worker or test may share.
"""

from __future__ import annotations

import os

from readiness.celery import app

app.conf.task_default_queue = os.environ["PREFLIGHT_TEST_QUEUE"]

__all__ = ["app"]
