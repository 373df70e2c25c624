"""Reads for pilots and their assessments, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import QuerySet

from assessments.frameworks.scoring import CriterionRow, Scorecard, evidence_expiry, score
from assessments.organisations.models import Organisation
from assessments.pilots.models import Assessment, AssessmentStatus, Evidence, Pilot, Response


@dataclass(frozen=True)
class PortfolioRow:
    pilot: Pilot
    assessment: Assessment | None
    card: Scorecard | None


def pilots_for_organisation(*, organisation: Organisation) -> QuerySet[Pilot]:
    return Pilot.objects.filter(organisation=organisation).select_related("business_owner", "technical_owner")


def portfolio_rows(*, pilots: Sequence[Pilot], today: dt.date) -> list[PortfolioRow]:
    """Each pilot with its open assessment and scorecard, in three queries for any number of pilots."""
    assessments = {
        a.pilot_id: a
        for a in Assessment.objects.filter(pilot__in=[p.pk for p in pilots])
        .exclude(status=AssessmentStatus.SUPERSEDED)
        .select_related("framework")
    }
    cards = scorecards(assessment_ids=[a.pk for a in assessments.values()], today=today)
    rows = []
    for pilot in pilots:
        assessment = assessments.get(pilot.pk)
        rows.append(
            PortfolioRow(pilot=pilot, assessment=assessment, card=cards.get(assessment.pk) if assessment else None)
        )
    return rows


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
