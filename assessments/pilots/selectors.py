"""Reads for pilots and their assessments, in a fixed number of queries."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from django.db.models import Count, F, FilteredRelation, OuterRef, Q, QuerySet, Subquery

from assessments.evidence.selectors import CheckOutcome, check_outcomes
from assessments.frameworks.models import SEVERITY_RANK, Criterion, Framework, GapKey, HeldEvidence, Severity
from assessments.frameworks.scoring import (
    EXPIRING,
    STALE,
    CriterionRow,
    GapScore,
    Scorecard,
    evidence_expiry,
    freshness_of,
    score,
)
from assessments.organisations.models import Organisation
from assessments.pilots.held import HeldItem, held_evidence
from assessments.pilots.models import Assessment, AssessmentStatus, Evidence, Pilot, Response, ResponseStatus
from assessments.reviews.models import OPEN_MEETING_STATUSES, ReviewMeeting


def assessment_open(*, pilot: Pilot) -> Assessment | None:
    return pilot.assessments.exclude(status=AssessmentStatus.SUPERSEDED).select_related("framework", "score").first()


def assessment_open_of_pilot(*, pilot_id: int, organisation_ids: Sequence[int]) -> Assessment | None:
    """The open assessment of a pilot in one of these organisations, with the pilot and its
    cached scores: what a pilot page needs to find its stored parts, in one small query
    (the framework and the owners are read only when the parts are rendered)."""
    return (
        Assessment.objects.filter(pilot_id=pilot_id, pilot__organisation_id__in=organisation_ids)
        .exclude(status=AssessmentStatus.SUPERSEDED)
        .select_related("pilot", "score")
        .first()
    )


CheckOutcomes = dict[tuple[int, int], list[CheckOutcome]]


def criterion_rows(
    *, assessment_ids: Sequence[int], checks: CheckOutcomes | None = None
) -> dict[int, list[CriterionRow]]:
    """Scoring rows per assessment: three queries however many assessments are asked for
    (two when the caller already read the pilots' ``checks``), and one more for each kind
    of evidence Preflight holds that a criterion among them names."""
    expiries: dict[int, list[dt.date]] = defaultdict(list)
    evidence = Evidence.objects.filter(response__assessment_id__in=assessment_ids).values_list(
        "response_id", "effective_date", "expires_on", "response__criterion__max_evidence_age_days"
    )
    for response_id, effective_date, expires_on, max_age in evidence:
        expiries[response_id].append(
            evidence_expiry(effective_date=effective_date, expires_on=expires_on, max_age_days=max_age)
        )
    if checks is None:
        checks = check_outcomes(assessment_ids=assessment_ids)

    rows: dict[int, list[CriterionRow]] = defaultdict(list)
    responses = (
        Response.objects.filter(assessment_id__in=assessment_ids)
        .order_by("criterion__gap__order", "criterion__order")
        .values_list(
            "id",
            "assessment_id",
            "assessment__pilot_id",
            "criterion_id",
            "status",
            "assessment__pilot__risk_tier",
            "criterion__code",
            "criterion__title",
            "criterion__severity_minimal",
            "criterion__severity_limited",
            "criterion__severity_high",
            "criterion__preflight_evidence",
            "criterion__max_evidence_age_days",
            "assessment__pilot__organisation_id",
            "criterion__gap__key",
            "criterion__gap__name",
            "criterion__gap__order",
            "criterion__gap__weight",
        )
    )
    listed = list(responses)
    kinds = {row[11] for row in listed if row[11]}
    held = (
        held_evidence(assessments=sorted({(row[1], row[2], row[13]) for row in listed}), kinds=kinds) if kinds else {}
    )
    for (
        rid, aid, pilot_id, criterion_id, status, tier, code, title, s_min, s_lim, s_high, held_kind, max_age,
        _org, gkey, gname, gorder, gweight,
    ) in listed:  # fmt: skip
        severities = {"minimal": s_min, "limited": s_lim, "high": s_high}
        found = checks.get((pilot_id, criterion_id), [])
        item = held.get((aid, held_kind)) if held_kind else None
        rows[aid].append(
            CriterionRow(
                code=code,
                title=title,
                gap_key=gkey,
                gap_name=gname,
                gap_order=gorder,
                gap_weight=gweight,
                severity=severities[tier] or _top(severities.values()),
                status=status,
                applies=bool(severities[tier]),
                evidence_expiries=(
                    *expiries.get(rid, ()),
                    *(c.expiry for c in found if c.expiry),
                    *_held_expiry(item, max_age),
                ),
                check_failures=tuple(f for c in found if (f := c.failure)),
                **_held_fields(held_kind, item),
            )
        )
    return rows


def _top(severities: Iterable[str]) -> str:
    """The highest of a criterion's severities (what a row that does not apply is shown with)."""
    return max((s for s in severities if s), key=SEVERITY_RANK.__getitem__, default="minor")


def _held_expiry(item: HeldItem | None, max_age: int) -> tuple[dt.date, ...]:
    return (evidence_expiry(effective_date=item.on, expires_on=None, max_age_days=max_age),) if item else ()


def _held_fields(kind: str, item: HeldItem | None) -> dict[str, str]:
    if not kind:
        return {}
    if item is not None:
        return {"held": item.summary}
    label = HeldEvidence(kind).label
    return {"held_missing": label[0].lower() + label[1:]}


def held_for(*, assessment: Assessment, criteria: Iterable[Criterion]) -> dict[tuple[int, str], HeldItem]:
    """The evidence Preflight holds for one assessment's criteria (no query when none names any)."""
    kinds = {c.preflight_evidence for c in criteria if c.preflight_evidence}
    if not kinds:
        return {}
    pilot = assessment.pilot
    return held_evidence(assessments=[(assessment.pk, pilot.pk, pilot.organisation_id)], kinds=kinds)


def scorecards(
    *, assessment_ids: Sequence[int], today: dt.date, checks: CheckOutcomes | None = None
) -> dict[int, Scorecard]:
    rows = criterion_rows(assessment_ids=assessment_ids, checks=checks)
    return {aid: score(rows.get(aid, []), today=today) for aid in assessment_ids}


def scorecard(*, assessment: Assessment, today: dt.date) -> Scorecard:
    return scorecards(assessment_ids=[assessment.pk], today=today)[assessment.pk]


SORTS = {
    "name": ("name",),
    "score": (F("open__score__overall").asc(nulls_first=True), "name"),
    "-score": (F("open__score__overall").desc(nulls_last=True), "name"),
    "blockers": ("-open__score__blockers", "name"),
    "stale": ("-open__score__stale_evidence", "name"),
    "stage": ("stage", "name"),
    "review": (F("s_review").asc(nulls_last=True), "name"),
}


@dataclass(frozen=True)
class PortfolioFilters:
    q: str = ""
    stage: str = ""
    risk_tier: str = ""
    gap: str = ""
    below: int | None = None
    owner: int | None = None
    sort: str = "name"


@dataclass(frozen=True)
class PortfolioEntry:
    pilot: Pilot
    overall: int | None
    gaps: list[GapScore]
    blockers: int
    stale: int
    is_ready: bool  # the criteria only; the portfolio adds the sign-offs (reviews.selectors.portfolio_gates)
    next_review: dt.datetime | None  # the next scheduled review meeting


def portfolio(*, organisation: Organisation, filters: PortfolioFilters) -> QuerySet[Pilot]:
    """Pilots of ``organisation`` with their cached scores, filtered and sorted in SQL."""
    qs = (
        Pilot.objects.filter(organisation=organisation)
        .annotate(open=FilteredRelation("assessments", condition=~Q(assessments__status=AssessmentStatus.SUPERSEDED)))
        .select_related("technical_owner", "business_owner")
        .annotate(
            s_overall=F("open__score__overall"),
            s_blockers=F("open__score__blockers"),
            s_stale=F("open__score__stale_evidence"),
            s_ready=F("open__score__is_ready"),
            s_review=Subquery(
                ReviewMeeting.objects.filter(pilot_id=OuterRef("pk"), status__in=OPEN_MEETING_STATUSES)
                .order_by("scheduled_at")
                .values("scheduled_at")[:1]
            ),
            s_assessment=F("open__id"),
            **{f"s_{key}": F(f"open__score__{key}") for key in GapKey.values},
        )
    )
    if filters.q:
        qs = qs.filter(Q(name__icontains=filters.q) | Q(description__icontains=filters.q))
    if filters.stage:
        qs = qs.filter(stage=filters.stage)
    if filters.risk_tier:
        qs = qs.filter(risk_tier=filters.risk_tier)
    if filters.gap in GapKey.values and filters.below is not None:
        qs = qs.filter(**{f"open__score__{filters.gap}__lt": filters.below})
    if filters.owner:
        qs = qs.filter(Q(technical_owner_id=filters.owner) | Q(business_owner_id=filters.owner))
    return qs.order_by(*SORTS.get(filters.sort, SORTS["name"]))


def portfolio_entries(pilots: Sequence[Pilot]) -> list[PortfolioEntry]:
    """Turn annotated pilots from ``portfolio`` into display rows (no queries)."""
    entries = []
    for pilot in pilots:
        gaps = [
            GapScore(key=key, name=label, weight=0, score=getattr(pilot, f"s_{key}"), counted=0, met=0, blocking_open=0)
            for key, label in GapKey.choices
        ]
        entries.append(
            PortfolioEntry(
                pilot=pilot,
                overall=getattr(pilot, "s_overall", None),
                gaps=gaps,
                blockers=getattr(pilot, "s_blockers", 0) or 0,
                stale=getattr(pilot, "s_stale", 0) or 0,
                is_ready=bool(getattr(pilot, "s_ready", False)),
                next_review=getattr(pilot, "s_review", None),
            )
        )
    return entries


@dataclass(frozen=True)
class EvidenceView:
    evidence: Evidence
    expiry: dt.date
    freshness: str


# Answers that still need work, when the criterion applies to the pilot.
OPEN_STATUSES = frozenset({ResponseStatus.NOT_STARTED, ResponseStatus.PARTLY_MET, ResponseStatus.NOT_MET})


@dataclass(frozen=True)
class ChecklistRow:
    """One criterion on the page. ``evidence`` holds the items themselves only where they are
    shown (an open editor, the full cards); ``freshness`` always covers every item."""

    response: Response
    criterion_row: CriterionRow
    evidence: list[EvidenceView]
    blocker_reason: str | None
    freshness: tuple[str, ...] = ()
    checks: tuple[CheckOutcome, ...] = ()

    @property
    def checks_failing(self) -> int:
        return sum(1 for c in self.checks if c.state in ("fail", "error"))

    @property
    def severity(self) -> str:
        """The criterion's severity at the pilot's risk tier ("na" where it does not apply there)."""
        return self.criterion_row.severity if self.criterion_row.applies else "na"

    @property
    def severity_label(self) -> str:
        return Severity(self.criterion_row.severity).label if self.criterion_row.applies else "Not this tier"

    @property
    def evidence_count(self) -> int:
        return len(self.freshness)

    @property
    def gap_key(self) -> str:
        return self.criterion_row.gap_key

    @property
    def is_open(self) -> bool:
        return self.criterion_row.applies and self.response.status in OPEN_STATUSES

    @property
    def stale(self) -> int:
        return self.freshness.count(STALE)

    @property
    def expiring(self) -> int:
        return self.freshness.count(EXPIRING)


@dataclass(frozen=True)
class ChecklistFilters:
    """What the checklist shows; kept in the page's URL so a filtered view can be shared."""

    gap: str = ""
    blockers: bool = False
    mine: bool = False
    not_met: bool = False
    stale: bool = False

    FLAGS: ClassVar[tuple[str, ...]] = ("blockers", "mine", "not_met", "stale")

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> ChecklistFilters:
        gap = params.get("gap", "")
        return cls(
            gap=gap if gap in GapKey.values else "",
            **{flag: params.get(flag) == "1" for flag in cls.FLAGS},
        )

    @property
    def active(self) -> bool:
        return bool(self.gap) or any(getattr(self, flag) for flag in self.FLAGS)

    def query(self) -> dict[str, str]:
        values = {flag: "1" for flag in self.FLAGS if getattr(self, flag)}
        return {"gap": self.gap, **values} if self.gap else values


def checklist_filter(
    rows: Sequence[ChecklistRow], *, filters: ChecklistFilters, user_pk: int | None, owns_pilot: bool
) -> list[ChecklistRow]:
    """Rows that pass every active filter. "Mine" is what the person is named owner of, and,
    for the pilot's own owners, what nobody has been named for yet."""

    def mine(row: ChecklistRow) -> bool:
        owner = row.response.owner_id
        return owner == user_pk or (owns_pilot and owner is None)

    return [
        row
        for row in rows
        if (not filters.gap or row.gap_key == filters.gap)
        and (not filters.blockers or row.blocker_reason)
        and (not filters.mine or mine(row))
        and (not filters.not_met or row.is_open)
        and (not filters.stale or row.stale)
    ]


@dataclass(frozen=True)
class Checklist:
    assessment: Assessment
    rows: list[ChecklistRow]
    card: Scorecard


def _evidence_views(items: Sequence[Evidence], *, max_age_days: int, today: dt.date) -> list[EvidenceView]:
    views = []
    for item in items:
        expiry = evidence_expiry(
            effective_date=item.effective_date, expires_on=item.expires_on, max_age_days=max_age_days
        )
        views.append(EvidenceView(evidence=item, expiry=expiry, freshness=freshness_of(expiry, today)))
    return views


def _criterion_row(
    response: Response,
    expiries: tuple[dt.date, ...],
    tier: str,
    checks: Sequence[CheckOutcome] = (),
    held: Mapping[tuple[int, str], HeldItem] | None = None,
) -> CriterionRow:
    criterion = response.criterion
    kind = criterion.preflight_evidence
    item = (held or {}).get((response.assessment_id, kind)) if kind else None
    return CriterionRow(
        code=criterion.code,
        title=criterion.title,
        gap_key=criterion.gap.key,
        gap_name=criterion.gap.name,
        gap_order=criterion.gap.order,
        gap_weight=criterion.gap.weight,
        severity=criterion.severity_for(tier) or criterion.top_severity,
        status=response.status,
        applies=criterion.applies_to(tier),
        evidence_expiries=(
            *expiries,
            *(c.expiry for c in checks if c.expiry),
            *_held_expiry(item, criterion.max_evidence_age_days),
        ),
        check_failures=tuple(f for c in checks if (f := c.failure)),
        **_held_fields(kind, item),
    )


def checklist(
    *,
    assessment: Assessment,
    today: dt.date,
    response_ids: Sequence[int] | None = None,
    with_evidence: bool = True,
) -> Checklist:
    """Everything the pilot page shows about an assessment, in two queries. Without
    ``with_evidence`` only each item's dates are read (enough for counts and freshness),
    which is what the compact lines need."""
    tier = assessment.pilot.risk_tier
    responses = (
        Response.objects.filter(assessment=assessment)
        .select_related("criterion__gap", "owner", "updated_by")
        .order_by("criterion__gap__order", "criterion__order")
    )
    items_by_response: dict[int, list[Evidence]] = defaultdict(list)
    dates_by_response: dict[int, list[tuple[dt.date, dt.date | None]]] = defaultdict(list)
    if with_evidence:
        for item in Evidence.objects.filter(response__assessment=assessment).select_related("added_by"):
            items_by_response[item.response_id].append(item)
            dates_by_response[item.response_id].append((item.effective_date, item.expires_on))
    else:
        dates = Evidence.objects.filter(response__assessment=assessment).values_list(
            "response_id", "effective_date", "expires_on"
        )
        for response_id, effective_date, expires_on in dates:
            dates_by_response[response_id].append((effective_date, expires_on))
    checks = check_outcomes(pilot_ids=[assessment.pilot_id])
    listed = list(responses)
    held = held_for(assessment=assessment, criteria=(r.criterion for r in listed))
    rows: list[ChecklistRow] = []
    for response in listed:
        response.assessment = assessment  # one assessment for every row: no query per row
        found = tuple(checks.get((assessment.pilot_id, response.criterion_id), ()))
        max_age = response.criterion.max_evidence_age_days
        expiries = tuple(
            evidence_expiry(effective_date=effective, expires_on=expires, max_age_days=max_age)
            for effective, expires in dates_by_response.get(response.pk, [])
        )
        views = _evidence_views(items_by_response.get(response.pk, []), max_age_days=max_age, today=today)
        crow = _criterion_row(response, expiries, tier, found, held)
        rows.append(ChecklistRow(response, crow, views, None, tuple(freshness_of(e, today) for e in expiries), found))
    card = score([r.criterion_row for r in rows], today=today)
    reasons = {b.code: b.reason for b in card.blockers}
    rows = [dataclasses.replace(r, blocker_reason=reasons.get(r.criterion_row.code)) for r in rows]
    if response_ids is not None:
        wanted = set(response_ids)
        rows = [r for r in rows if r.response.pk in wanted]
    return Checklist(assessment=assessment, rows=rows, card=card)


def checklist_row(
    *, response: Response, card: Scorecard, today: dt.date, checks: CheckOutcomes | None = None
) -> ChecklistRow:
    """One row for a response whose scorecard is already known (one query for its evidence,
    and one for the pilot's checks unless the caller read them already)."""
    items = list(Evidence.objects.filter(response=response).select_related("added_by"))
    views = _evidence_views(items, max_age_days=response.criterion.max_evidence_age_days, today=today)
    reasons = {b.code: b.reason for b in card.blockers}
    pilot = response.assessment.pilot
    if checks is None:
        checks = check_outcomes(pilot_ids=[pilot.pk])
    found = tuple(checks.get((pilot.pk, response.criterion_id), ()))
    held = held_for(assessment=response.assessment, criteria=[response.criterion])
    crow = _criterion_row(response, tuple(v.expiry for v in views), pilot.risk_tier, found, held)
    return ChecklistRow(response, crow, views, reasons.get(crow.code), tuple(v.freshness for v in views), found)


@dataclass(frozen=True)
class MoveLine:
    """One criterion in the move preview, in the words the page shows."""

    code: str
    title: str
    gap: str
    status: str  # the stored value, for the status chip's colour
    status_label: str  # "Met", "Not started", ...
    evidence: int  # pieces of manual evidence on the answer


@dataclass(frozen=True)
class MovePreview:
    """What moving an assessment to another framework version does to each answer, matched by code.

    ``carried`` answers go to the new assessment with their justification, owner, due date
    and evidence; ``dropped`` ones belong to criteria the new version no longer has and
    stay on record only in the old (superseded) assessment; ``new`` criteria start
    unanswered. Lines follow each version's gap and criterion order.
    """

    carried: list[MoveLine]
    dropped: list[MoveLine]
    new: list[MoveLine]

    @property
    def evidence_carried(self) -> int:
        return sum(line.evidence for line in self.carried)


def assessment_move_preview(*, assessment: Assessment, framework: Framework) -> MovePreview:
    """The preview of ``assessment_move`` to ``framework``, in two queries however many criteria."""
    answers = (
        Response.objects.filter(assessment=assessment)
        .annotate(evidence_count=Count("evidence"))
        .order_by("criterion__gap__order", "criterion__order")
        .values_list("criterion__code", "criterion__title", "criterion__gap__name", "status", "evidence_count")
    )
    target = {
        code: (title, gap)
        for code, title, gap in Criterion.objects.filter(framework=framework)
        .order_by("gap__order", "order")
        .values_list("code", "title", "gap__name")
    }
    carried, dropped = [], []
    answered: set[str] = set()
    for code, title, gap, status, evidence in answers:
        answered.add(code)
        label = ResponseStatus(status).label
        if code in target:
            # Shown under its title and gap in the new version, where the answer will sit.
            new_title, new_gap = target[code]
            carried.append(MoveLine(code, new_title, new_gap, status, label, evidence))
        else:
            dropped.append(MoveLine(code, title, gap, status, label, evidence))
    unanswered = ResponseStatus.NOT_STARTED
    new = [
        MoveLine(code, title, gap, unanswered.value, unanswered.label, 0)
        for code, (title, gap) in target.items()
        if code not in answered
    ]
    return MovePreview(carried=carried, dropped=dropped, new=new)
