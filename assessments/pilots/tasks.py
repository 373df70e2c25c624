"""Scheduled upkeep for pilots."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from assessments.pilots.models import AssessmentScore
from assessments.pilots.scorecache import scores_refresh

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=900, soft_time_limit=840)
def scores_refresh_due() -> int:
    """Rescore every assessment last scored before today: evidence goes stale with time.

    Safe to run twice: a second run finds nothing due.
    """
    today = timezone.localdate()
    due = list(AssessmentScore.objects.filter(computed_on__lt=today).values_list("assessment_id", flat=True))
    for start in range(0, len(due), 200):
        scores_refresh(assessment_ids=due[start : start + 200], today=today)
    logger.info("rescored %d assessments for %s", len(due), today)
    return len(due)
