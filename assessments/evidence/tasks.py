"""Background jobs of the evidence room: take ids, call a service, nothing else."""

from __future__ import annotations

import logging

from assessments.evidence.models import CheckRun
from assessments.evidence.services import RunRetry, check_run_execute, check_runs_queue_due
from readiness.jobs import job

logger = logging.getLogger(__name__)


@job()
def check_runs_dispatch() -> int:
    """Beat, every minute: queue the checks that are due (and re-queue runs of dead workers)."""
    return len(check_runs_queue_due())


@job(time_limit=120)
def check_run(run_id: int) -> str:
    """Run one check. A duplicate delivery finds the run claimed or finished and does nothing."""
    try:
        run = check_run_execute(run_id=run_id)
    except CheckRun.DoesNotExist:
        logger.warning("check run %s no longer exists; skipped", run_id)
        return "missing"
    except RunRetry as exc:
        raise check_run.retry(countdown=exc.countdown, max_retries=None, exc=exc) from exc
    return run.status if run else "skipped"
