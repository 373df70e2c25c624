"""Keeps AssessmentScore in step with the scoring functions.

This maintains derived data, not facts: it records no audit event of its own
because every change that moves a score is already an audited service call (and
the daily refresh only reflects the passage of time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from assessments.frameworks.scoring import Scorecard
from assessments.pilots.models import AssessmentScore
from assessments.pilots.selectors import CheckOutcomes, scorecards

GAP_COLUMNS = ("evals", "observability", "guardrails", "governance", "cost", "ownership")


def _columns(card: Scorecard, today: dt.date) -> dict[str, object]:
    values: dict[str, object] = {
        "overall": card.overall,
        "blockers": len(card.blockers),
        "stale_evidence": card.freshness.stale,
        "expiring_evidence": card.freshness.expiring,
        "is_ready": card.is_ready,
        "computed_on": today,
        # update() skips auto_now fields; the time of the last change is worth keeping.
        "updated_at": timezone.now(),
    }
    for gap in card.gaps:
        if gap.key in GAP_COLUMNS:
            values[gap.key] = gap.score
    return values


def scores_refresh(
    *, assessment_ids: Sequence[int], today: dt.date, checks: CheckOutcomes | None = None
) -> dict[int, Scorecard]:
    """Recompute and store the scorecards of ``assessment_ids``; returns them, so a caller
    that shows the scores does not compute them a second time."""
    cards = scorecards(assessment_ids=assessment_ids, today=today, checks=checks)
    # No savepoint of its own: callers run inside their transaction, and the daily job's
    # one-row UPDATEs are atomic by themselves.
    with transaction.atomic(savepoint=False):
        for assessment_id, card in cards.items():
            columns = _columns(card, today)
            if not AssessmentScore.objects.filter(assessment_id=assessment_id).update(**columns):
                AssessmentScore.objects.create(assessment_id=assessment_id, **columns)
    return cards
