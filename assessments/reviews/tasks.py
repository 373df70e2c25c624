"""Scheduled jobs for reviews."""

from __future__ import annotations

import logging

from assessments.reviews.notify import conditions_overdue_mail
from readiness.jobs import job

logger = logging.getLogger(__name__)


@job()
def conditions_overdue_notify() -> int:
    """Mail each overdue condition's owner once (safe to run twice: claimed per condition)."""
    sent = conditions_overdue_mail()
    logger.info("mailed %d overdue review conditions", sent)
    return sent
