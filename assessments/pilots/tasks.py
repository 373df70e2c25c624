"""Scheduled upkeep for pilots."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.utils import timezone

from assessments.pilots.models import AssessmentScore
from assessments.pilots.scorecache import scores_refresh
from readiness.jobs import job

logger = logging.getLogger(__name__)

BATCH_SIZE = 200


@job()
def scores_refresh_due() -> int:
    """Rescore every assessment last scored before today: evidence goes stale with time.

    Safe to run twice: a second run finds nothing due. Each batch commits on its own;
    when half the time limit is spent the job queues its own continuation and stops,
    so a large backlog is worked through in several short jobs.
    """
    today = timezone.localdate()
    stop_at = time.monotonic() + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    due = list(AssessmentScore.objects.filter(computed_on__lt=today).values_list("assessment_id", flat=True))
    done = 0
    for start in range(0, len(due), BATCH_SIZE):
        done += len(scores_refresh(assessment_ids=due[start : start + BATCH_SIZE], today=today))
        if start + BATCH_SIZE < len(due) and time.monotonic() > stop_at:
            scores_refresh_due.delay()
            logger.info("rescored %d of %d assessments for %s; continuing in a new job", done, len(due), today)
            return done
    logger.info("rescored %d assessments for %s", done, today)
    return done
