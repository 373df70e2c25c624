"""Reads for pilots and their assessments, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from django.db.models import Prefetch, QuerySet

from assessments.frameworks.scoring import CriterionRow, Scorecard, evidence_expiry, score
from assessments.organisations.models import Organisation
from assessments.pilots.models import Assessment, AssessmentStatus, Evidence, Pilot, Response


def pilots_for_organisation(*, organisation: Organisation) -> QuerySet[Pilot]:
    open_assessments = Assessment.objects.exclude(status=AssessmentStatus.SUPERSEDED).select_related("framework")
    return (
        Pilot.objects.filter(organisation=organisation)
        .select_related("business_owner", "technical_owner")
        .prefetch_related(Prefetch("assessments", queryset=open_assessments, to_attr="open_assessments"))
    )


def assessment_open(*, pilot: Pilot) -> Assessment | None:
    return pilot.assessments.exclude(status=AssessmentStatus.SUPERSEDED).select_related("framework").first()


def criterion_rows(*, assessment_ids: Sequence[int]) -> dict[int, list[CriterionRow]]:
    """Scoring rows per assessment: two queries however many assessments are asked for."""
    expiries: dict[int, list[dt.date]] = defaultdict(list)
    evidence = Evidence.objects.filter(response__assessment_id__in=assessment_ids).values_list(
        "response_id", "effective_date", "expires_on", "response__criterion__max_evidence_age_days"
    )
    for response_id, effective_date, expires_on, max_age in evidence:
        expiries[response_id].append(
            evidence_expiry(effective_date=effective_date, expires_on=expires_on, max_age_days=max_age)
        )

    rows: dict[int, list[CriterionRow]] = defaultdict(list)
    responses = (
        Response.objects.filter(assessment_id__in=assessment_ids)
        .order_by("criterion__gap__order", "criterion__order")
        .values_list(
            "id",
            "assessment_id",
            "status",
            "assessment__pilot__risk_tier",
            "criterion__code",
            "criterion__title",
            "criterion__severity",
            "criterion__applies_to_minimal",
            "criterion__applies_to_limited",
            "criterion__applies_to_high",
            "criterion__gap__key",
            "criterion__gap__name",
            "criterion__gap__order",
            "criterion__gap__weight",
        )
    )
    for rid, aid, status, tier, code, title, severity, a_min, a_lim, a_high, gkey, gname, gorder, gweight in responses:
        applies = {"minimal": a_min, "limited": a_lim, "high": a_high}[tier]
        rows[aid].append(
            CriterionRow(
                code=code,
                title=title,
                gap_key=gkey,
                gap_name=gname,
                gap_order=gorder,
                gap_weight=gweight,
                severity=severity,
                status=status,
                applies=applies,
                evidence_expiries=tuple(expiries.get(rid, ())),
            )
        )
    return rows


def scorecards(*, assessment_ids: Sequence[int], today: dt.date) -> dict[int, Scorecard]:
    rows = criterion_rows(assessment_ids=assessment_ids)
    return {aid: score(rows.get(aid, []), today=today) for aid in assessment_ids}


def scorecard(*, assessment: Assessment, today: dt.date) -> Scorecard:
    return scorecards(assessment_ids=[assessment.pk], today=today)[assessment.pk]
