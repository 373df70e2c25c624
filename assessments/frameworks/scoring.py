"""Readiness scoring: pure functions over rows a selector has already loaded.

Rules (the README repeats them for reviewers):
- A criterion counts only if it applies to the pilot's risk tier and is not
  marked not applicable.
- Points: met 1, partly met 0.5, not met / not started 0; weighted by severity
  (blocking 3, major 2, minor 1). A gap's score is 0 to 100; the overall score is
  the gap scores weighted by gap weight (gaps with nothing applicable are left out).
- Evidence is fresh until its expiry (its own expiry date or effective date +
  the criterion's maximum age, whichever is sooner), "expiring" within 14 days
  of it, stale after.
- Severity is the criterion's severity at the pilot's risk tier (a criterion may
  block a high-risk pilot and only be major for a minimal-risk one).
- Evidence Preflight itself holds (a signed joint review, a generated statement-of-work
  definition, a signed audit checkpoint) counts like a passing check on the criteria
  that name it, and an unanswered such criterion counts as met while it holds.
- A passing automated check counts as current evidence from the day of its latest
  run. A check whose latest run failed (or could not read its system) keeps its
  criterion from counting as met: it earns the points of "not met".
- ``is_ready`` fails closed: any applicable blocking criterion that is not met,
  unanswered, met with no current evidence, or with a failing check makes the
  pilot not ready, and each such criterion is listed as a reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

STATUS_POINTS = {"met": 1.0, "partly_met": 0.5, "not_met": 0.0, "not_started": 0.0}
SEVERITY_WEIGHT = {"blocking": 3, "major": 2, "minor": 1}
EXPIRING_WITHIN_DAYS = 14

FRESH, EXPIRING, STALE = "fresh", "expiring", "stale"


@dataclass(frozen=True)
class CriterionRow:
    """One criterion's answer, flattened for scoring."""

    code: str
    title: str
    gap_key: str
    gap_name: str
    gap_order: int
    gap_weight: int
    severity: str
    status: str
    applies: bool = True
    evidence_expiries: tuple[dt.date, ...] = ()
    # "check “Golden set” failing since 1 Dec 2026 10:00", one per failing check.
    check_failures: tuple[str, ...] = ()
    # Evidence Preflight holds for this criterion ("joint review approved … on 3 Dec 2026"),
    # or, where the criterion names such evidence and none is held yet, what is missing.
    held: str = ""
    held_missing: str = ""

    @property
    def counted(self) -> bool:
        return self.applies and self.status != "not_applicable"

    @property
    def effective_status(self) -> str:
        """The answer as scoring counts it: "met" with a failing check is not met; an unanswered
        criterion whose evidence Preflight holds is met."""
        if self.status == "met" and self.check_failures:
            return "not_met"
        if self.status == "not_started" and self.held:
            return "met"
        return self.status


@dataclass(frozen=True)
class GapScore:
    key: str
    name: str
    weight: int
    score: int | None
    counted: int
    met: int
    blocking_open: int


@dataclass(frozen=True)
class Blocker:
    code: str
    title: str
    gap_key: str
    reason: str


@dataclass(frozen=True)
class Freshness:
    fresh: int = 0
    expiring: int = 0
    stale: int = 0

    @property
    def total(self) -> int:
        return self.fresh + self.expiring + self.stale


@dataclass(frozen=True)
class Scorecard:
    gaps: list[GapScore]
    overall: int | None
    blockers: list[Blocker]
    freshness: Freshness
    is_ready: bool
    reasons: list[str] = field(default_factory=list)

    def gap(self, key: str) -> GapScore:
        return next(g for g in self.gaps if g.key == key)


def evidence_expiry(*, effective_date: dt.date, expires_on: dt.date | None, max_age_days: int) -> dt.date:
    by_age = effective_date + dt.timedelta(days=max_age_days)
    return min(by_age, expires_on) if expires_on else by_age


def freshness_of(expiry: dt.date, today: dt.date) -> str:
    if expiry < today:
        return STALE
    if expiry <= today + dt.timedelta(days=EXPIRING_WITHIN_DAYS):
        return EXPIRING
    return FRESH


def _weighted(rows: Iterable[CriterionRow]) -> float | None:
    total = earned = 0.0
    for row in rows:
        weight = SEVERITY_WEIGHT[row.severity]
        total += weight
        earned += weight * STATUS_POINTS[row.effective_status]
    return None if total == 0 else 100.0 * earned / total


def _blocker_reason(row: CriterionRow, today: dt.date) -> str | None:
    if row.check_failures:
        answer = "" if row.status == "met" else (_answer_reason(row, today) or "")
        return "; ".join(filter(None, [answer, *row.check_failures]))
    return _answer_reason(row, today)


def _answer_reason(row: CriterionRow, today: dt.date) -> str | None:
    status = "met" if row.status == "not_started" and row.held else row.status
    if status == "not_started":
        return f"unanswered, and Preflight holds no {row.held_missing} yet" if row.held_missing else "unanswered"
    if status in {"not_met", "partly_met"}:
        return "not met" if status == "not_met" else "only partly met"
    if not row.evidence_expiries:
        return "marked met but has no evidence"
    if all(freshness_of(expiry, today) == STALE for expiry in row.evidence_expiries):
        return "marked met but all its evidence has expired"
    return None


def score(rows: Sequence[CriterionRow], *, today: dt.date) -> Scorecard:
    """Score an assessment. Deterministic for a given ``today``."""
    gap_rows: dict[str, list[CriterionRow]] = {}
    gap_meta: dict[str, tuple[str, int, int]] = {}
    for row in rows:
        gap_rows.setdefault(row.gap_key, []).append(row)
        gap_meta[row.gap_key] = (row.gap_name, row.gap_order, row.gap_weight)

    blockers: list[Blocker] = []
    counts = {FRESH: 0, EXPIRING: 0, STALE: 0}
    for row in rows:
        if not row.counted:
            continue
        for expiry in row.evidence_expiries:
            counts[freshness_of(expiry, today)] += 1
        if row.severity == "blocking":
            reason = _blocker_reason(row, today)
            if reason:
                blockers.append(Blocker(code=row.code, title=row.title, gap_key=row.gap_key, reason=reason))

    gaps: list[GapScore] = []
    for key, (name, _order, weight) in sorted(gap_meta.items(), key=lambda item: item[1][1]):
        counted = [r for r in gap_rows[key] if r.counted]
        value = _weighted(counted)
        gaps.append(
            GapScore(
                key=key,
                name=name,
                weight=weight,
                score=None if value is None else round(value),
                counted=len(counted),
                met=sum(1 for r in counted if r.effective_status == "met"),
                blocking_open=sum(1 for b in blockers if b.gap_key == key),
            )
        )

    scored = [
        (g.weight, gap_value)
        for g in gaps
        if (gap_value := _weighted(r for r in gap_rows[g.key] if r.counted)) is not None
    ]
    weight_sum = sum(w for w, _ in scored)
    overall = round(sum(w * v for w, v in scored) / weight_sum) if weight_sum else None

    reasons = [f"{b.code} {b.title}: {b.reason}" for b in blockers]
    if not any(row.counted for row in rows):
        reasons.insert(0, "No applicable criteria have been assessed.")
    return Scorecard(
        gaps=gaps,
        overall=overall,
        blockers=blockers,
        freshness=Freshness(fresh=counts[FRESH], expiring=counts[EXPIRING], stale=counts[STALE]),
        is_ready=not reasons,
        reasons=reasons,
    )
