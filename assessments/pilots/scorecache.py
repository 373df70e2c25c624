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
from assessments.pilots.models import Assessment, AssessmentScore, AssessmentStatus
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


def scores_refresh_held(*, kind: str, organisation_id: int, pilot_id: int | None = None) -> int:
    """Rescore the open assessments whose framework counts evidence of ``kind`` that Preflight
    holds (a signature, a generated definition, a checkpoint), after that evidence changed:
    in the organisation, or only the one pilot. One query when none does."""
    found = Assessment.objects.filter(
        pilot__organisation_id=organisation_id, framework__criteria__preflight_evidence=kind
    ).exclude(status=AssessmentStatus.SUPERSEDED)
    if pilot_id is not None:
        found = found.filter(pilot_id=pilot_id)
    ids = sorted(set(found.values_list("pk", flat=True)))
    today = timezone.localdate()
    for start in range(0, len(ids), 200):
        scores_refresh(assessment_ids=ids[start : start + 200], today=today)
    return len(ids)
