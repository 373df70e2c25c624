"""How every background job is declared: ``@job()`` in place of ``@shared_task``.

It lives beside the Celery app and settings because the policy follows from the
broker, not from any room: a job is acknowledged only when it ends, so a killed
worker's job is delivered again, and every limit here is a fraction of the
broker's visibility timeout (``CELERY_VISIBILITY_TIMEOUT``) so that a job still
running is never handed to a second worker.

Only the errors in ``TRANSIENT_ERRORS`` are retried, with exponential backoff and
full jitter; anything else fails the job at once, is logged and is acknowledged.
Jobs must therefore be safe to run twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

import redis.exceptions
from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerUnavailable

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,  # database down, restarting or failing over; deadlock; serialisation failure
    InterfaceError,  # the database connection was closed under us
    redis.exceptions.ConnectionError,  # the cache's Redis is unreachable
    redis.exceptions.TimeoutError,
    BrokerUnavailable,  # queueing a follow-up job while the broker is away
)
# The first retry waits up to RETRY_BACKOFF seconds, each later one up to twice as
# long, never more than JOB_RETRY_BACKOFF_MAX; the jitter keeps workers that failed
# together from retrying together. Eight retries ride out several minutes' outage.
RETRY_BACKOFF = 5
MAX_RETRIES = 8


class Job(Task):
    """A task that says in the log whether a failure was final and why."""

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if isinstance(exc, TRANSIENT_ERRORS):
            logger.error("job %s[%s] gave up after %d retries: %r", self.name, task_id, self.request.retries, exc)
        else:
            logger.error("job %s[%s] failed and will not be retried: %r", self.name, task_id, exc)


def job(*, time_limit: int | None = None) -> Callable[[Callable[_P, _R]], Task[_P, _R]]:
    """Declare a background job with the house retry, acknowledgement and time-limit policy.

    ``time_limit`` may shorten the hard limit, never lengthen it past
    ``CELERY_TASK_TIME_LIMIT``: work that needs longer is split into several jobs.
    """
    ceiling = settings.CELERY_TASK_TIME_LIMIT
    hard = ceiling if time_limit is None else min(time_limit, ceiling)
    soft = min(settings.CELERY_TASK_SOFT_TIME_LIMIT, hard - max(1, hard // 6))
    decorator = shared_task(
        base=Job,
        autoretry_for=TRANSIENT_ERRORS,
        retry_backoff=RETRY_BACKOFF,
        retry_backoff_max=settings.JOB_RETRY_BACKOFF_MAX,
        retry_jitter=True,
        max_retries=MAX_RETRIES,
        acks_late=True,
        reject_on_worker_lost=True,
        time_limit=hard,
        soft_time_limit=soft,
    )
    return cast("Callable[[Callable[_P, _R]], Task[_P, _R]]", decorator)
