"""The portfolio report: every pilot of an organisation, for leadership.

One context for both the page and the PDF: stage funnel, readiness distribution,
pilots blocked per gap, projected cost against envelope, the oldest open conditions
and the evidence going stale. Scores come from the scoring selectors in a fixed
number of queries; cost reads one query per pilot that has a usage export.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from assessments.evidence.models import LinkedSystem, SystemKind
from assessments.evidence.selectors import cost_trend
from assessments.frameworks.scoring import EXPIRING, STALE, Scorecard, evidence_expiry, freshness_of
from assessments.organisations.models import Organisation
from assessments.pilots.models import Assessment, AssessmentStatus, Evidence, Pilot, Stage
from assessments.pilots.selectors import scorecards
from assessments.reports.charts import columns_svg, hbars_svg
from assessments.reports.models import Report, ReportKind
from assessments.reports.renderers import Rendered, register
from assessments.reports.sandbox import BASE_URL, pdf_render
from assessments.reviews.models import Condition, ConditionStatus
from assessments.reviews.selectors import portfolio_gates

FUNNEL = [Stage.PILOT, Stage.CANDIDATE, Stage.PRODUCTION, Stage.PAUSED, Stage.RETIRED]
BINS = [(0, 19), (20, 39), (40, 59), (60, 79), (80, 100)]
LIST_LIMIT = 15


@dataclass(frozen=True)
class PilotLine:
    pilot: Pilot
    overall: int | None
    ready: bool
    blockers: int
    stale: int


@dataclass(frozen=True)
class CostLine:
    pilot: Pilot
    cost_per_task: float | None
    envelope: float | None
    monthly_projection: float | None

    @property
    def over(self) -> bool:
        return self.cost_per_task is not None and self.envelope is not None and self.cost_per_task > self.envelope


@dataclass(frozen=True)
class StaleLine:
    pilot: Pilot
    code: str
    title: str
    expiry: dt.date
    freshness: str


def _costs(pilots: list[Pilot]) -> list[CostLine]:
    with_usage = set(
        LinkedSystem.objects.filter(pilot__in=pilots, kind=SystemKind.USAGE_COST, enabled=True).values_list(
            "pilot_id", flat=True
        )
    )
    lines = []
    for pilot in pilots:
        trend = cost_trend(pilot=pilot) if pilot.pk in with_usage else None
        envelope = float(pilot.cost_envelope_per_task) if pilot.cost_envelope_per_task is not None else None
        if trend is None and envelope is None:
            continue
        lines.append(
            CostLine(
                pilot=pilot,
                cost_per_task=trend.cost_per_task if trend else None,
                envelope=envelope,
                monthly_projection=trend.monthly_projection if trend else None,
            )
        )
    return lines


def _stale(assessment_ids: list[int], pilots: dict[int, Pilot], today: dt.date) -> list[StaleLine]:
    lines = []
    rows = Evidence.objects.filter(response__assessment_id__in=assessment_ids).values_list(
        "response__assessment__pilot_id",
        "response__criterion__code",
        "title",
        "effective_date",
        "expires_on",
        "response__criterion__max_evidence_age_days",
    )
    for pilot_id, code, title, effective, expires, max_age in rows:
        expiry = evidence_expiry(effective_date=effective, expires_on=expires, max_age_days=max_age)
        freshness = freshness_of(expiry, today)
        if freshness in (STALE, EXPIRING):
            lines.append(StaleLine(pilots[pilot_id], code, title, expiry, freshness))
    return sorted(lines, key=lambda line: (line.expiry, line.pilot.name, line.code))


def portfolio_context(*, organisation: Organisation, today: dt.date | None = None) -> dict[str, Any]:
    """Everything the portfolio page and PDF show."""
    today = today or timezone.localdate()
    pilots = list(
        Pilot.objects.filter(organisation=organisation)
        .select_related("technical_owner", "business_owner")
        .order_by("name")
    )
    by_id = {p.pk: p for p in pilots}
    open_assessments = dict(
        Assessment.objects.filter(pilot__organisation=organisation)
        .exclude(status=AssessmentStatus.SUPERSEDED)
        .values_list("pilot_id", "pk")
    )
    cards: dict[int, Scorecard] = scorecards(assessment_ids=list(open_assessments.values()), today=today)
    owners = {p.pk: {i for i in (p.technical_owner_id, p.business_owner_id) if i} for p in pilots}
    gates = portfolio_gates(
        pilots=[(pid, aid, cards[aid].is_ready) for pid, aid in open_assessments.items()], owners=owners, today=today
    )
    lines = []
    for pilot in pilots:
        aid = open_assessments.get(pilot.pk)
        card = cards.get(aid) if aid else None
        gate = gates.get(pilot.pk)
        lines.append(
            PilotLine(
                pilot=pilot,
                overall=card.overall if card else None,
                ready=bool(gate and gate.ready),
                blockers=len(card.blockers) if card else 0,
                stale=card.freshness.stale if card else 0,
            )
        )
    stages = Counter(p.stage for p in pilots)
    funnel = [(Stage(s).label, stages.get(s, 0)) for s in FUNNEL]
    distribution = [
        (f"{lo}\u2013{hi}", sum(1 for x in lines if x.overall is not None and lo <= x.overall <= hi)) for lo, hi in BINS
    ]
    distribution.append(("not scored", sum(1 for x in lines if x.overall is None)))
    blocked: dict[str, int] = defaultdict(int)
    gap_names: dict[str, str] = {}
    for card in cards.values():
        for gap in card.gaps:
            gap_names.setdefault(gap.key, gap.name)
            if gap.blocking_open:
                blocked[gap.key] += 1
    blocked_rows = [(name, float(blocked.get(key, 0)), "good") for key, name in gap_names.items()]
    costs = _costs(pilots)
    conditions = list(
        Condition.objects.filter(pilot__organisation=organisation, status=ConditionStatus.OPEN)
        .select_related("pilot", "owner", "response__criterion")
        .order_by("created_at", "pk")[:LIST_LIMIT]
    )
    stale = _stale(list(open_assessments.values()), by_id, today)
    ready = sum(1 for x in lines if x.ready)
    return {
        "organisation": organisation,
        "today": today,
        "generated_at": timezone.now(),
        "lines": lines,
        "pilot_count": len(pilots),
        "ready_count": ready,
        "funnel": funnel,
        "funnel_svg": columns_svg(funnel, label="Pilots by stage"),
        "distribution": distribution,
        "distribution_svg": columns_svg(distribution, label="Pilots by overall readiness score"),
        "blocked_rows": blocked_rows,
        "blocked_svg": hbars_svg(
            blocked_rows, maximum=max([v for _n, v, _b in blocked_rows] + [1]), label="Pilots blocked per gap"
        ),
        "costs": costs,
        "over_envelope": sum(1 for c in costs if c.over),
        "conditions": conditions,
        "stale": stale[:LIST_LIMIT],
        "stale_total": len(stale),
        "stale_more": max(0, len(stale) - LIST_LIMIT),
    }


@register(ReportKind.PORTFOLIO)
def render_portfolio(report: Report) -> Rendered:
    context = {**portfolio_context(organisation=report.organisation), "report": report, "pdf": True}
    context["generated_at"] = report.requested_at
    pdf = pdf_render(render_to_string("reports/portfolio_pdf.html", context), base_url=BASE_URL)
    date = timezone.localtime(report.requested_at).strftime("%Y-%m-%d")
    return Rendered(
        content=pdf,
        filename=f"{report.organisation.slug}-portfolio-{date}-R{report.pk}.pdf",
        content_type="application/pdf",
        summary={"pilots": context["pilot_count"], "ready": context["ready_count"]},
    )
