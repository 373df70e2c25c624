"""Reads of linked systems, checks and runs, shaped for readiness and for the pages."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from assessments.evidence.models import Check, CheckRun, LinkedSystem, RunStatus, SystemKind, Verdict
from assessments.frameworks.scoring import evidence_expiry
from assessments.pilots.models import Pilot


@dataclass(frozen=True)
class CheckOutcome:
    """A check as readiness and the checklist see it: its latest run's verdict in words."""

    check_id: int
    name: str
    rule: str
    state: str  # "pass", "fail", "error" (could not read its system), "pending" (never finished)
    message: str
    finished_at: dt.datetime | None
    failing_since: dt.datetime | None
    expiry: dt.date | None  # a pass is current evidence until then

    @property
    def failure(self) -> str | None:
        if self.state in ("pass", "pending"):
            return None
        when = self.failing_since or self.finished_at
        since = timezone.localtime(when).strftime("%-d %b %Y %H:%M") if when else "its last run"
        return f"check “{self.name}” failing since {since}"


def check_outcomes(
    *, pilot_ids: Sequence[int] = (), assessment_ids: Sequence[int] = ()
) -> dict[tuple[int, int], list[CheckOutcome]]:
    """Per (pilot, criterion), every check of an enabled linked system of these pilots (or of
    the pilots of these assessments). One query."""
    outcomes: dict[tuple[int, int], list[CheckOutcome]] = {}
    scope = Q(linked_system__pilot_id__in=pilot_ids) | Q(linked_system__pilot__assessments__id__in=assessment_ids)
    checks = (
        Check.objects.filter(scope, linked_system__enabled=True)
        .distinct()
        .select_related("latest_run", "criterion", "linked_system")
        .order_by("name")
    )
    for check in checks:
        run = check.latest_run
        expiry = None
        message = run.message if run else "Not run yet."
        if run is None:
            state = "pending"
        elif not run.is_sealed:
            # Altered in the database: counts as unreadable, never as its altered verdict.
            state = "error"
            message = (
                "This run's record was changed outside Preflight (its seal does not match), so its verdict "
                "does not count. Re-check to get one that does."
            )
        elif run.status == RunStatus.OK and run.verdict == Verdict.PASS:
            state = "pass"
            assert run.finished_at is not None
            expiry = evidence_expiry(
                effective_date=timezone.localdate(run.finished_at),
                expires_on=None,
                max_age_days=check.criterion.max_evidence_age_days,
            )
        else:
            state = "fail" if run.status == RunStatus.OK else "error"
        outcomes.setdefault((check.linked_system.pilot_id, check.criterion_id), []).append(
            CheckOutcome(
                check_id=check.pk,
                name=check.name,
                rule=check.rule_text(),
                state=state,
                message=message,
                finished_at=run.finished_at if run else None,
                failing_since=check.failing_since,
                expiry=expiry,
            )
        )
    return outcomes


def linked_systems_of(*, pilot: Pilot) -> QuerySet[LinkedSystem]:
    return LinkedSystem.objects.filter(pilot=pilot).prefetch_related(
        "checks__criterion", "checks__rule_changed_by", "checks__latest_run"
    )


def run_history(*, check_ids: Sequence[int], limit: int = 20) -> dict[int, list[CheckRun]]:
    """The newest ``limit`` finished runs of each check, oldest first (for sparklines)."""
    history: dict[int, list[CheckRun]] = {}
    runs = CheckRun.objects.filter(
        check_rule_id__in=check_ids, status__in=[RunStatus.OK, RunStatus.FAILED, RunStatus.ERROR]
    )
    for run in runs.order_by("check_rule_id", "-finished_at", "-pk").only(
        "check_rule_id", "status", "verdict", "value", "finished_at", "facts"
    ):
        bucket = history.setdefault(run.check_rule_id, [])
        if len(bucket) < limit:
            bucket.append(run)
    return {k: list(reversed(v)) for k, v in history.items()}


@dataclass(frozen=True)
class CostTrend:
    """What the pilot's newest usage export said: the daily series, the envelope, the figures."""

    series: list[tuple[str, float]]
    envelope: float | None
    cost_per_task: float | None
    monthly_projection: float | None
    tasks: int | None
    check_name: str
    run_at: dt.datetime | None
    passed: bool


def cost_trend(*, pilot: Pilot) -> CostTrend | None:
    """The latest readable run of a usage-and-cost check of the pilot's enabled systems (one query)."""
    run = (
        CheckRun.objects.filter(
            check_rule__linked_system__pilot=pilot,
            check_rule__linked_system__kind=SystemKind.USAGE_COST,
            check_rule__linked_system__enabled=True,
            status=RunStatus.OK,
        )
        .select_related("check_rule")
        .order_by("-finished_at", "-pk")
        .first()
    )
    if run is None:
        return None
    metrics = run.facts.get("metrics", {}) if isinstance(run.facts, dict) else {}
    details = run.facts.get("details", {}) if isinstance(run.facts, dict) else {}
    series = [
        (str(day), float(value))
        for day, value in details.get("series", [])
        if isinstance(value, int | float) and math.isfinite(value)
    ]
    envelope = pilot.cost_envelope_per_task
    tasks = metrics.get("tasks")
    return CostTrend(
        series=series[-90:],
        envelope=float(envelope) if envelope is not None else None,
        cost_per_task=metrics.get("cost_per_task"),
        monthly_projection=metrics.get("monthly_projection"),
        tasks=int(tasks) if isinstance(tasks, int | float) else None,
        check_name=run.check_rule.name,
        run_at=run.finished_at,
        passed=run.verdict == Verdict.PASS,
    )


@dataclass(frozen=True)
class Regression:
    """A check that flipped from pass to fail, and whether it is still failing."""

    run: CheckRun
    still_failing: bool


def regressions_recent(*, organisation_id: int, days: int = 14, limit: int = 8) -> list[Regression]:
    """The organisation's newest pass → fail flips of the last ``days`` (one query)."""
    runs = (
        CheckRun.objects.filter(
            is_regression=True,
            finished_at__gte=timezone.now() - dt.timedelta(days=days),
            check_rule__linked_system__pilot__organisation_id=organisation_id,
        )
        .select_related("check_rule__linked_system__pilot", "check_rule__criterion")
        .order_by("-finished_at", "-pk")[:limit]
    )
    return [
        Regression(
            run=run,
            still_failing=run.check_rule.failing_since is not None
            and run.finished_at is not None
            and run.check_rule.failing_since <= run.finished_at,
        )
        for run in runs
    ]
